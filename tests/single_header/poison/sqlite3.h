// Put first on the include path of single_header_no_sqlite_test: with
// MANY_LEVEL_NO_SQLITE defined, nothing may include SQLite's header.
#error "sqlite3.h was included although MANY_LEVEL_NO_SQLITE is defined"
