# The wsserver Qt binding's CMake package (make install-qt: Qt 5 and/or 6).
#
#   find_package(wsserver_qt REQUIRED)          # after find_package(Qt6 or Qt5 ...), or -DQT_MAJOR_VERSION=5|6
#   target_link_libraries(app PRIVATE wsserver::qt)              # <wsserver/QtServer.h>
#   target_link_libraries(app PRIVATE wsserver::qt_libwebsocket) # seed 000: "WebsocketServer.h", "SslHandler.h"
#
# Qt version: QT_MAJOR_VERSION if set, else the Qt the project already
# found (Qt6 first), else the newest one installed here.
include(CMakeFindDependencyMacro)
find_dependency(wsserver 0.1)
if(QT_MAJOR_VERSION)
  set(_wsqt ${QT_MAJOR_VERSION})
elseif(TARGET Qt6::Core)
  set(_wsqt 6)
elseif(TARGET Qt5::Core)
  set(_wsqt 5)
elseif(EXISTS "${CMAKE_CURRENT_LIST_DIR}/wsserver_qt6-targets.cmake")
  set(_wsqt 6)
else()
  set(_wsqt 5)
endif()
if(NOT EXISTS "${CMAKE_CURRENT_LIST_DIR}/wsserver_qt${_wsqt}-targets.cmake")
  set(wsserver_qt_FOUND FALSE)
  set(wsserver_qt_NOT_FOUND_MESSAGE "wsserver's Qt ${_wsqt} binding is not installed (make install-qt)")
  return()
endif()
find_dependency(Qt${_wsqt} COMPONENTS Core Network)
include("${CMAKE_CURRENT_LIST_DIR}/wsserver_qt${_wsqt}-targets.cmake")
foreach(_t "" _libwebsocket)
  if(NOT TARGET wsserver::qt${_t})
    add_library(wsserver::qt${_t} INTERFACE IMPORTED)
    set_target_properties(wsserver::qt${_t} PROPERTIES INTERFACE_LINK_LIBRARIES wsserver::qt${_wsqt}${_t})
  endif()
endforeach()
set(wsserver_qt_QT_MAJOR_VERSION ${_wsqt})
unset(_wsqt)
