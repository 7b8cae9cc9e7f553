# Runs the decoder fuzzer over the seed corpus, then for a bounded number of runs. New inputs
# go to WORK (in the build tree), never to the committed seeds.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(
  COMMAND ${FUZZER} -runs=200000 -max_total_time=30 -max_len=4096 -timeout=10
          -print_final_stats=1 ${WORK} ${SEEDS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz_decoder failed (exit ${rc}); the crashing input is in the test's working directory")
endif()
