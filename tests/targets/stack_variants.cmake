# --- Variants of stack_target.c for tests/unit/unwind_test.cpp and xstack (issue 5) ----------
# stack_target (the default build, from the glob in CMakeLists.txt): the project's flags.
# stack_target_nofp: -O2 without frame pointers: only CFI (.eh_frame) can unwind it.
# stack_target_fp: -O0 with frame pointers.
# stack_target_nopie: a non-PIE executable (load bias 0).
# stack_target_stripped: no .symtab (-s); -rdynamic exports its functions into .dynsym, so
# only .dynsym can name them.
set(xproc_stack_target_src ${CMAKE_CURRENT_SOURCE_DIR}/stack_target.c)
find_package(Threads REQUIRED)

function(xproc_stack_variant name)
  cmake_parse_arguments(ARG "" "" "COMPILE;LINK" ${ARGN})
  add_executable(xproc_target_${name} ${xproc_stack_target_src})
  set_target_properties(xproc_target_${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    OUTPUT_NAME ${name})
  target_compile_options(xproc_target_${name} PRIVATE ${ARG_COMPILE})
  target_link_options(xproc_target_${name} PRIVATE ${ARG_LINK})
  target_link_libraries(xproc_target_${name} PRIVATE Threads::Threads)
  add_dependencies(xproc_targets xproc_target_${name})
endfunction()

# Later flags win over CMAKE_C_FLAGS_<CONFIG> (-O2 -g): these set the optimization level.
xproc_stack_variant(stack_target_nofp COMPILE -O2 -fomit-frame-pointer)
xproc_stack_variant(stack_target_fp COMPILE -O0 -fno-omit-frame-pointer)
xproc_stack_variant(stack_target_nopie COMPILE -fno-pie LINK -no-pie)
set_target_properties(xproc_target_stack_target_nopie PROPERTIES POSITION_INDEPENDENT_CODE OFF)
xproc_stack_variant(stack_target_stripped LINK -s -rdynamic)
