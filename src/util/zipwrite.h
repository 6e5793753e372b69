/* zipwrite.h — zip archives of job folders (upstream's zip_tools.py).
 *
 * Entries are the folder's regular files, named by their path relative to
 * the folder, deflated. Files are streamed from disk by libzip when the
 * archive is closed, so a folder of gigabytes of logs costs no memory. */
#ifndef ZIPWRITE_H
#define ZIPWRITE_H

#include <stddef.h>

#include "util/sb.h"

/* Writes folder into a new zip file out_path (which must not exist).
 * 0, or -1 with a message appended to err (the partial file removed). */
int zip_write_folder(const char *folder, const char *out_path, sb_t *err);

/* Upstream's _zip_folder_to_file_and_remove: zips folder into
 * "<folder>_tmp.zip", renames it to "<folder>.zip", and removes the folder
 * only when the zip holds as many files as the folder and is at least
 * 1 MiB. Errors are logged, never returned. */
void zip_folder_and_remove(const char *folder);

/* The bytes to send for a job folder download: "<folder>.zip" when it
 * exists, else a fresh archive of folder. Appended to out; -1 with err. */
int zip_folder_bytes(const char *folder, sb_t *out, sb_t *err);

/* Removes a folder tree (rm -rf). 0 or -1. */
int rmtree(const char *path);

#endif
