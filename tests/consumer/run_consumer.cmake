# Configures, builds and runs one consumer project from scratch, as a user
# would. CTest calls it (see CMakeLists.txt beside it):
#   cmake -DKIND=find_package|add_subdirectory -DSOURCE_DIR=<repo> -DCONSUMER_DIR=<tests/consumer>
#         -DWORK_DIR=<scratch dir> -DGENERATOR=... -DCXX_COMPILER=... -DWITH_SQLITE=ON|OFF
#         [-DPREFIX_PATH=a|b] -P run_consumer.cmake
# find_package: configures the repo with its tests, examples and Inspector off,
# installs it into a prefix under WORK_DIR, then builds the consumer against
# that prefix. add_subdirectory: the consumer adds the repo itself.
cmake_minimum_required(VERSION 3.16)

foreach(variable KIND SOURCE_DIR CONSUMER_DIR WORK_DIR GENERATOR CXX_COMPILER WITH_SQLITE)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "run_consumer.cmake: -D${variable}=... is missing")
  endif()
endforeach()
string(REPLACE "|" ";" PREFIX_PATH "${PREFIX_PATH}")

# Runs a command, and stops with its output when it fails.
function(step description)
  message(STATUS "${description}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "${description} failed (${result}):\n  ${command}\n${output}")
  endif()
  set(step_output "${output}" PARENT_SCOPE)
endfunction()

set(work ${WORK_DIR}/${KIND})
file(REMOVE_RECURSE ${work})
# Debug: no optimisation, so the consumer builds quickly.
set(common_args -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Debug
  -DMANY_LEVEL_BUILD_TESTS=OFF -DMANY_LEVEL_BUILD_EXAMPLES=OFF -DMANY_LEVEL_BUILD_INSPECTOR=OFF
  -DMANY_LEVEL_WITH_SQLITE=${WITH_SQLITE})

if(KIND STREQUAL "find_package")
  set(prefix ${work}/prefix)
  step("Configuring many-level to install it"
    ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${work}/producer ${common_args} "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}")
  step("Building many-level" ${CMAKE_COMMAND} --build ${work}/producer)
  step("Installing many-level into ${prefix}" ${CMAKE_COMMAND} --install ${work}/producer --prefix ${prefix})
  step("Comparing the installed header with single_include/many_level.hpp"
    ${CMAKE_COMMAND} -E compare_files ${prefix}/include/many_level.hpp ${SOURCE_DIR}/single_include/many_level.hpp)
  set(consumer_args "-DCMAKE_PREFIX_PATH=${prefix};${PREFIX_PATH}")
elseif(KIND STREQUAL "add_subdirectory")
  set(consumer_args -DMANY_LEVEL_SOURCE_DIR=${SOURCE_DIR} "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}")
else()
  message(FATAL_ERROR "run_consumer.cmake: KIND must be find_package or add_subdirectory, not '${KIND}'")
endif()

step("Configuring the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR}/${KIND} -B ${work}/build ${common_args} ${consumer_args})
# RUN_SERIAL (CMakeLists.txt) keeps other tests off the two cores meanwhile.
step("Building the consumer" ${CMAKE_COMMAND} --build ${work}/build --config Debug --parallel 2)
step("Running the consumer" ${CMAKE_COMMAND} --build ${work}/build --config Debug --target run_consumer)
message(STATUS "${step_output}")
string(REGEX MATCHALL "many-level consumer: ok" runs "${step_output}")
if(NOT runs)
  message(FATAL_ERROR "The consumer did not report success:\n${step_output}")
endif()
