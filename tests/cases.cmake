# tower_it_cases(NAME SCRIPT ARGS... CASES CASE[:COST]... [PROPERTIES PROP VALUE...]): a long Python
# integration file as several ctests that `ctest -j` runs side by side: NAME.CASE runs the file's test
# class or method named CASE (`=CASE`, see select() in integration/natsfx.py), and NAME.rest every other
# test of the file (`~CASE...`), so that a test added to the file later runs too. Each case gets the
# PROPERTIES, and its own COST when given (its seconds, roughly: ctest starts the costly ones first).
# The cases must not depend on each other: each runs in its own process, with its own module fixtures.
# `ctest -R NAME` still runs the whole file.
function(tower_it_cases name script)
  cmake_parse_arguments(C "" "" "ARGS;CASES;PROPERTIES" ${ARGN})
  set(rest)
  foreach(spec IN LISTS C_CASES)
    string(REPLACE ":" ";" parts "${spec}")
    list(GET parts 0 case)
    list(LENGTH parts n)
    add_test(NAME ${name}.${case} COMMAND python3 ${script} ${C_ARGS} =${case})
    set_tests_properties(${name}.${case} PROPERTIES ${C_PROPERTIES})
    if(n GREATER 1)
      list(GET parts 1 cost)
      set_tests_properties(${name}.${case} PROPERTIES COST ${cost})
    endif()
    list(APPEND rest "~${case}")
  endforeach()
  add_test(NAME ${name}.rest COMMAND python3 ${script} ${C_ARGS} ${rest})
  set_tests_properties(${name}.rest PROPERTIES ${C_PROPERTIES})
endfunction()
