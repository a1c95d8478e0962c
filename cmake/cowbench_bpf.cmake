# BPF programs: clang -target bpf (CO-RE) → bpftool gen skeleton → an INTERFACE target per object.
#
# COWBENCH_BPF_TOOLCHAIN is ON when clang, bpftool, libbpf and a vmlinux BTF (to generate
# vmlinux.h from) are all found; otherwise the tracer is left out and COWBENCH_BPF_MISSING says
# what is missing. Everything lands in ${PROJECT_BINARY_DIR}/generated/ebpf/, which is on the
# include path of every cowbench library (as "ebpf/NAME.skel.h").

option(COWBENCH_BPF "Build the eBPF tracer when clang, bpftool and libbpf are there" ON)
set(COWBENCH_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH
    "Kernel BTF that vmlinux.h is generated from (any kernel with BTF works: the programs are CO-RE)")
set(COWBENCH_VMLINUX_H "" CACHE FILEPATH
    "A ready vmlinux.h to use instead of generating one from COWBENCH_VMLINUX_BTF")

find_program(COWBENCH_BPF_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
find_program(COWBENCH_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin)

set(COWBENCH_BPF_MISSING "")
if(NOT COWBENCH_BPF)
  list(APPEND COWBENCH_BPF_MISSING "COWBENCH_BPF=OFF")
endif()
if(NOT COWBENCH_BPF_CLANG)
  list(APPEND COWBENCH_BPF_MISSING "clang")
endif()
if(NOT COWBENCH_BPFTOOL)
  list(APPEND COWBENCH_BPF_MISSING "bpftool")
endif()
if(NOT TARGET PkgConfig::LIBBPF)
  list(APPEND COWBENCH_BPF_MISSING "libbpf")
endif()
if(NOT COWBENCH_VMLINUX_H AND NOT EXISTS "${COWBENCH_VMLINUX_BTF}")
  list(APPEND COWBENCH_BPF_MISSING "kernel BTF (${COWBENCH_VMLINUX_BTF}; or set COWBENCH_VMLINUX_H)")
endif()
if(COWBENCH_BPF_MISSING)
  set(COWBENCH_BPF_TOOLCHAIN OFF)
  string(JOIN ", " _missing ${COWBENCH_BPF_MISSING})
  message(STATUS "eBPF tracer: not built (missing: ${_missing})")
else()
  set(COWBENCH_BPF_TOOLCHAIN ON)
  message(STATUS "eBPF tracer: clang ${COWBENCH_BPF_CLANG}, bpftool ${COWBENCH_BPFTOOL}")
endif()

set(COWBENCH_BPF_OUT "${PROJECT_BINARY_DIR}/generated/ebpf")

# The target architecture as the BPF headers spell it (__TARGET_ARCH_x86, ...).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(COWBENCH_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(COWBENCH_BPF_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "riscv64")
  set(COWBENCH_BPF_ARCH riscv)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "s390x")
  set(COWBENCH_BPF_ARCH s390)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "ppc64")
  set(COWBENCH_BPF_ARCH powerpc)
else()
  set(COWBENCH_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# vmlinux.h: every kernel type, from the kernel's BTF (or the file COWBENCH_VMLINUX_H names).
if(COWBENCH_BPF_TOOLCHAIN AND NOT TARGET cowbench_vmlinux_h)
  if(COWBENCH_VMLINUX_H)
    add_custom_command(OUTPUT ${COWBENCH_BPF_OUT}/vmlinux.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${COWBENCH_BPF_OUT}
      COMMAND ${CMAKE_COMMAND} -E copy ${COWBENCH_VMLINUX_H} ${COWBENCH_BPF_OUT}/vmlinux.h
      DEPENDS ${COWBENCH_VMLINUX_H}
      COMMENT "Copying vmlinux.h from ${COWBENCH_VMLINUX_H}")
  else()
    # bpftool writes to stdout; a temporary file keeps a failed dump from leaving a half header.
    add_custom_command(OUTPUT ${COWBENCH_BPF_OUT}/vmlinux.h
      COMMAND ${CMAKE_COMMAND} -E make_directory ${COWBENCH_BPF_OUT}
      COMMAND sh -c "\"$1\" btf dump file \"$2\" format c > \"$3\"" sh
              ${COWBENCH_BPFTOOL} ${COWBENCH_VMLINUX_BTF} ${COWBENCH_BPF_OUT}/vmlinux.h.tmp
      COMMAND ${CMAKE_COMMAND} -E rename ${COWBENCH_BPF_OUT}/vmlinux.h.tmp ${COWBENCH_BPF_OUT}/vmlinux.h
      COMMENT "Generating vmlinux.h from ${COWBENCH_VMLINUX_BTF}"
      VERBATIM)
  endif()
  add_custom_target(cowbench_vmlinux_h DEPENDS ${COWBENCH_BPF_OUT}/vmlinux.h)
endif()

# cowbench_bpf_object(NAME SOURCE file.bpf.c [DEPENDS headers...])
# Compiles SOURCE with clang -target bpf -g -O2 (CO-RE, BTF kept), generates the libbpf
# skeleton ebpf/NAME.skel.h with `bpftool gen skeleton`, and makes the INTERFACE target
# cowbench_bpf_NAME (alias cowbench::bpf_NAME): link it to get the header on the include path
# and the build order right.
function(cowbench_bpf_object name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPENDS" ${ARGN})
  if(NOT ARG_SOURCE)
    message(FATAL_ERROR "cowbench_bpf_object(${name}): SOURCE is required")
  endif()
  get_filename_component(src ${ARG_SOURCE} ABSOLUTE)
  set(obj ${COWBENCH_BPF_OUT}/${name}.bpf.o)
  set(skel ${COWBENCH_BPF_OUT}/${name}.skel.h)
  set(includes -I${COWBENCH_BPF_OUT} -I${PROJECT_SOURCE_DIR})
  foreach(dir ${LIBBPF_INCLUDE_DIRS})
    list(APPEND includes -I${dir})
  endforeach()
  add_custom_command(OUTPUT ${obj}
    COMMAND ${COWBENCH_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${COWBENCH_BPF_ARCH}
            -Wall -Wno-unused-function -Wno-compare-distinct-pointer-types
            ${includes} -c ${src} -o ${obj}
    DEPENDS ${src} ${ARG_DEPENDS} ${COWBENCH_BPF_OUT}/vmlinux.h
    COMMENT "BPF ${name}: clang -target bpf"
    VERBATIM)
  add_custom_command(OUTPUT ${skel}
    COMMAND sh -c "\"$1\" gen skeleton \"$2\" name \"$3\" > \"$4\"" sh ${COWBENCH_BPFTOOL} ${obj} ${name} ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(cowbench_bpf_${name}_skel DEPENDS ${skel})
  add_library(cowbench_bpf_${name} INTERFACE)
  add_library(cowbench::bpf_${name} ALIAS cowbench_bpf_${name})
  target_include_directories(cowbench_bpf_${name} INTERFACE ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(cowbench_bpf_${name} INTERFACE PkgConfig::LIBBPF)
  add_dependencies(cowbench_bpf_${name} cowbench_bpf_${name}_skel)
endfunction()
