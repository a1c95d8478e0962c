# The configuration of `make run`'s first build (cmake -C): only the cowbench binary, as a unity
# build of the libraries with precompiled headers (cowbench_helpers.cmake) and without debug
# information. tests/run_build_test.sh builds it the same way.
set(COWBENCH_BUILD_TESTS OFF CACHE BOOL "")
set(COWBENCH_BUILD_BENCH OFF CACHE BOOL "")
set(COWBENCH_UNITY ON CACHE BOOL "")
set(COWBENCH_DEBUG_INFO OFF CACHE BOOL "")
