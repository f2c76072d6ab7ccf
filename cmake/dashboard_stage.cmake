# The dashboard's static files staged for serving: flatlink_stage_dashboard(<target> <source
# dir> <staged dir>) copies each file of the source folder into the staged folder at build
# time and puts beside each compressible one (html, js, mjs, css, json, svg, webmanifest; not
# the PNGs, which are compressed already) a `.gz` made by `gzip -9 -n -k`: without the file's
# name and time, so the same source gives the same bytes on every build. A changed source
# file is staged again by the next build (each staged file depends on its source); a new one
# is found by the glob (CONFIGURE_DEPENDS). flatlink-cloud serves the `.gz` to a browser that
# accepts gzip (cloud-server/server.cpp).
find_program(FLATLINK_GZIP gzip REQUIRED)

function(flatlink_stage_dashboard target source_dir staged_dir)
  file(GLOB sources CONFIGURE_DEPENDS LIST_DIRECTORIES false "${source_dir}/*")
  file(MAKE_DIRECTORY "${staged_dir}")
  set(outputs)
  foreach(source IN LISTS sources)
    get_filename_component(name "${source}" NAME)
    set(staged "${staged_dir}/${name}")
    if(name MATCHES "\\.(html|js|mjs|css|json|svg|webmanifest)$")
      add_custom_command(OUTPUT "${staged}" "${staged}.gz"
        COMMAND "${CMAKE_COMMAND}" -E copy "${source}" "${staged}"
        COMMAND "${FLATLINK_GZIP}" -9 -n -k -f "${staged}"
        DEPENDS "${source}"
        COMMENT "Staging dashboard/${name} and ${name}.gz"
        VERBATIM)
      list(APPEND outputs "${staged}" "${staged}.gz")
    else()
      add_custom_command(OUTPUT "${staged}"
        COMMAND "${CMAKE_COMMAND}" -E copy "${source}" "${staged}"
        DEPENDS "${source}"
        COMMENT "Staging dashboard/${name}"
        VERBATIM)
      list(APPEND outputs "${staged}")
    endif()
  endforeach()
  add_custom_target(${target} ALL DEPENDS ${outputs})
endfunction()
