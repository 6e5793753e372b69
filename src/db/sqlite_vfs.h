/*
 * sqlite_vfs.h — the VFS the server's SQLite connections open with: the
 * default one, with the database file's memory map kept across other
 * connections' commits (sqlite_vfs.c says why and when it is safe).
 */
#ifndef FRACTAL_DB_SQLITE_VFS_H
#define FRACTAL_DB_SQLITE_VFS_H

#include <sqlite3.h>

/* The registered shim's name for sqlite3_open_v2, registered on the first
 * call; NULL (SQLite's default VFS) when it could not be registered. */
const char *sqlite_vfs_name(void);

#endif
