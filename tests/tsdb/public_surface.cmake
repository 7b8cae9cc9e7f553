# Fails if code outside tsdb/ includes an internal tsdb header. Other components see the store
# only through tsdb/store.h, tsdb/query.h, tsdb/commit_observer.h and tsdb/event_feed.h
# (tsdb/README.md); tests
# of tsdb itself and the benchmarks of its internals may include the rest.
# Run as: cmake -DSOURCE_DIR=<repo> -P public_surface.cmake
cmake_minimum_required(VERSION 3.25)
set(allowed "tsdb/store.h" "tsdb/query.h" "tsdb/commit_observer.h" "tsdb/event_feed.h")
file(GLOB_RECURSE sources LIST_DIRECTORIES false RELATIVE "${SOURCE_DIR}"
     "${SOURCE_DIR}/app/*.cc" "${SOURCE_DIR}/app/*.h" "${SOURCE_DIR}/common/*.cc"
     "${SOURCE_DIR}/common/*.h" "${SOURCE_DIR}/http/*.cc" "${SOURCE_DIR}/http/*.h"
     "${SOURCE_DIR}/ingest/*.cc" "${SOURCE_DIR}/ingest/*.h" "${SOURCE_DIR}/sink/*.cc"
     "${SOURCE_DIR}/sink/*.h" "${SOURCE_DIR}/teach/*.cc"
     "${SOURCE_DIR}/teach/*.h" "${SOURCE_DIR}/web/*.cc" "${SOURCE_DIR}/web/*.h"
     "${SOURCE_DIR}/tests/*.cc" "${SOURCE_DIR}/tests/*.h")
set(bad "")
foreach(source IN LISTS sources)
  if(source MATCHES "^tests/tsdb/")
    continue()
  endif()
  file(STRINGS "${SOURCE_DIR}/${source}" lines REGEX "^#include \"tsdb/")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
    if(NOT header IN_LIST allowed)
      string(APPEND bad "\n  ${source}: ${header}")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "internal tsdb headers included outside tsdb/ (use tsdb/store.h, "
                      "tsdb/query.h, tsdb/commit_observer.h or tsdb/event_feed.h):${bad}")
endif()
