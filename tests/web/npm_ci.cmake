# Installs the browser test's npm dependencies (playwright-core only) from the committed lock
# file into the build tree, so the source tree stays clean. Skips the install when the lock file
# has not changed since the last one. PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the system Chromium is used.
file(MAKE_DIRECTORY ${DEST})
file(SHA256 ${SRC}/package-lock.json lock_hash)
set(stamp ${DEST}/node_modules/.stickmeter-lock-hash)
if(EXISTS ${stamp})
  file(READ ${stamp} previous)
  if(previous STREQUAL lock_hash)
    message(STATUS "node_modules up to date")
    return()
  endif()
endif()
configure_file(${SRC}/package.json ${DEST}/package.json COPYONLY)
configure_file(${SRC}/package-lock.json ${DEST}/package-lock.json COPYONLY)
set(ENV{PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD} 1)
execute_process(COMMAND ${NPM} ci --no-audit --no-fund --ignore-scripts
                WORKING_DIRECTORY ${DEST} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed (${rc}) in ${DEST}")
endif()
file(WRITE ${stamp} "${lock_hash}")
