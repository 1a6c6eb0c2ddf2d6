# The installed library: libwlprof.so.<major> and libwlprof.a from the
# module libraries' objects, wlprof.pc and the CMake package (wlprofConfig).
#
# One library, not one per module: the modules are released together, and
# their internal wl__ helpers (util/, model/) cross module boundaries; in one
# DSO they stay hidden (-fvisibility=hidden, WL_API the only export) and the
# ABI is one soname. The CMake package still names the parts (wlprof::sched,
# wlprof::pools, wlprof::profile, ...) so a program says what it uses, and a
# later split into several libraries does not change its CMakeLists.txt.
#
# Not in it: the test/sample fixtures (wl_fixtures), the CLI, and the
# in-process agent API (wl_agent: it links the preloaded agent library).
include(CMakePackageConfigHelpers)

set(WL_LIBWLPROF_MODULES)
foreach(lib wl_util wl_model wl_pyreader wl_profiler wl_reports wl_classifier wl_scheduler wl_pools
            wl_runner wl_stacks)
  if(TARGET ${lib})
    list(APPEND WL_LIBWLPROF_MODULES ${lib})
  endif()
endforeach()
set(WL_LIBWLPROF_OBJECTS)
foreach(lib ${WL_LIBWLPROF_MODULES})
  list(APPEND WL_LIBWLPROF_OBJECTS $<TARGET_OBJECTS:${lib}>)
endforeach()

set(WL_PC_REQUIRES_PRIVATE "")
if(TARGET wl_stacks)
  set(WL_PC_REQUIRES_PRIVATE "libdw")
endif()
set(WL_PKG_PRIVATE_LIBS Threads::Threads ${CMAKE_DL_LIBS} m)
if(TARGET wl_stacks)
  list(APPEND WL_PKG_PRIVATE_LIBS PkgConfig::LIBDW)
  # remote unwinding for --pid (agent/ptrace_unwind.c), when it was built
  pkg_check_modules(WL_PKG_UNWIND_PTRACE IMPORTED_TARGET libunwind-ptrace)
  if(TARGET PkgConfig::WL_PKG_UNWIND_PTRACE)
    list(APPEND WL_PKG_PRIVATE_LIBS PkgConfig::WL_PKG_UNWIND_PTRACE)
    set(WL_PC_REQUIRES_PRIVATE "libdw libunwind-ptrace")
  endif()
endif()

add_library(libwlprof_shared SHARED ${WL_LIBWLPROF_OBJECTS})
add_library(libwlprof_static STATIC ${WL_LIBWLPROF_OBJECTS})
foreach(t libwlprof_shared libwlprof_static)
  set_target_properties(${t} PROPERTIES OUTPUT_NAME wlprof LINKER_LANGUAGE C)
  target_include_directories(${t} INTERFACE $<BUILD_INTERFACE:${WL_INCLUDE_DIR}>
                                            $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  # The public headers include <uv.h> and <jansson.h>.
  target_link_libraries(${t} PUBLIC PkgConfig::LIBUV PkgConfig::JANSSON)
  target_link_libraries(${t} PRIVATE ${WL_PKG_PRIVATE_LIBS})
  if(TARGET wl_stacks)
    target_compile_definitions(${t} INTERFACE WL_HAVE_STACKS=1)
  endif()
endforeach()
set_target_properties(libwlprof_shared PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR} EXPORT_NAME wlprof)
set_target_properties(libwlprof_static PROPERTIES EXPORT_NAME wlprof_static)
target_link_options(libwlprof_shared PRIVATE -Wl,--no-undefined)

# The parts, as wlprof::NAME (all the one libwlprof today).
set(WL_PKG_COMPONENTS util sched pools profile report classify run)
if(TARGET wl_stacks)
  list(APPEND WL_PKG_COMPONENTS stacks)
endif()
set(WL_PKG_COMPONENT_TARGETS)
foreach(c ${WL_PKG_COMPONENTS})
  if(c STREQUAL util)
    continue() # internal: no component
  endif()
  add_library(wlprof_component_${c} INTERFACE)
  target_link_libraries(wlprof_component_${c} INTERFACE libwlprof_shared)
  set_target_properties(wlprof_component_${c} PROPERTIES EXPORT_NAME ${c})
  list(APPEND WL_PKG_COMPONENT_TARGETS wlprof_component_${c})
endforeach()

install(TARGETS libwlprof_shared libwlprof_static ${WL_PKG_COMPONENT_TARGETS}
        EXPORT wlprofTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
set(WL_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/wlprof)
install(EXPORT wlprofTargets NAMESPACE wlprof:: DESTINATION ${WL_CMAKE_INSTALL_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/wlprofConfig.cmake.in
  ${CMAKE_BINARY_DIR}/wlprofConfig.cmake INSTALL_DESTINATION ${WL_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/wlprofConfigVersion.cmake
  COMPATIBILITY SameMinorVersion) # 0.x: a minor release may break the ABI
install(FILES ${CMAKE_BINARY_DIR}/wlprofConfig.cmake ${CMAKE_BINARY_DIR}/wlprofConfigVersion.cmake
        DESTINATION ${WL_CMAKE_INSTALL_DIR})

# pkg-config: relocatable (prefix from the .pc file's own place), so
# `cmake --install build --prefix P` works for any P.
file(RELATIVE_PATH WL_PC_PREFIX_REL ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_CURRENT_LIST_DIR}/wlprof.pc.in ${CMAKE_BINARY_DIR}/wlprof.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/wlprof.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
