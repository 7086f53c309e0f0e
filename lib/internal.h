/* internal.h - conventions for symbols shared between the files of lib/.
 *
 * A function one file of the library defines and another calls is named
 * bgli_<object>_<verb> and declared BGL_INTERNAL, so it never leaks into
 * the shared library's ABI (the public API is bgl_<object>_<verb> and
 * BGL_EXPORT).  Not installed.
 */
#ifndef BGL_INTERNAL_H
#define BGL_INTERNAL_H

#ifdef _WIN32
/* A DLL exports only what is marked dllexport (BGL_EXPORT). */
#  define BGL_INTERNAL
#else
#  define BGL_INTERNAL __attribute__((visibility("hidden")))
#endif

/* printf-like functions: mingw-w64's "printf" archetype is Microsoft's,
 * which knows no %zu; the library is built with mingw's C99 stdio. */
#ifdef __MINGW32__
#  define BGL_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#else
#  define BGL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#endif

#endif /* BGL_INTERNAL_H */
