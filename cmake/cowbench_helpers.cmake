# CMake helpers shared by every folder: one static library per folder, one call per test.

# cowbench_add_library(NAME SOURCES... [DEPS targets...])
# Makes the static library cowbench_NAME with alias cowbench::NAME; the repo root is its include root.
function(cowbench_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cowbench_${name} STATIC ${ARG_SOURCES})
  add_library(cowbench::${name} ALIAS cowbench_${name})
  target_include_directories(cowbench_${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(cowbench_${name} PUBLIC ${ARG_DEPS})
  # COWBENCH_UNITY (make run's first build): one translation unit per batch of 16 sources, the
  # standard and library headers every folder uses precompiled once (cowbench_common's, reused
  # by the others). Measured on 2 cores (cowbench target, no ccache): 115 s in batches of 8
  # without the header, 94 s with it, 75 s in batches of 16 (fewer copies of the same template
  # instances); batches of 32 collide on names of anonymous namespaces. run_build_test builds it.
  if(COWBENCH_UNITY)
    set_target_properties(cowbench_${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 16)
    if(name STREQUAL "common")
      target_precompile_headers(cowbench_common PRIVATE <algorithm> <chrono> <filesystem> <functional> <map> <memory>
                                <optional> <set> <string> <string_view> <vector> <fmt/format.h> <nlohmann/json.hpp>)
    else()
      target_precompile_headers(cowbench_${name} REUSE_FROM cowbench_common)
    endif()
  endif()
endfunction()

# cowbench_add_test(NAME [NEEDS_ROOT] [LABELS l...] [TIMEOUT s] SOURCES... [DEPS targets...])
# One GoogleTest executable registered with CTest. NEEDS_ROOT adds the `root` label so that
# `ctest -LE root` runs the unprivileged part; the tests themselves skip with a reason when
# they lack root or a kernel feature. Its main() is cowbench_gtest_main (tests/gtest_main.cpp):
# a run in which every test that ran skipped exits 77, so CTest shows the suite as skipped
# ("Not Run") rather than passed.
function(cowbench_add_test name)
  cmake_parse_arguments(ARG "NEEDS_ROOT" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} cowbench_gtest_main)
  set(labels ${ARG_LABELS})
  if(ARG_NEEDS_ROOT)
    list(APPEND labels root)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT ${ARG_TIMEOUT}
                       SKIP_RETURN_CODE 77)
endfunction()
