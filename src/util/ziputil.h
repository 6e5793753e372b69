/* ziputil.h — ZIP archives of job folders (libzip).
 *
 * When a job ends its working folder may be zipped to `<folder>.zip` and the
 * folder removed; the history routes then read a unit's log from inside the
 * archive (upstream's _read_single_file_from_zip, which runs `unzip -p`).
 * Archive creation (upstream's _zip_folder_to_file_and_remove) belongs here
 * too. Nothing here knows about HTTP or the database. */
#ifndef ZIPUTIL_H
#define ZIPUTIL_H

#include <stddef.h>

struct sb;

/* Reads the member `member` (a path relative to the archive root, '/'
 * separated, matched exactly) of the archive at `archive` into out (appended;
 * the bytes as stored, NUL-terminated by the sb). Returns 0 on success, 1
 * when the archive has no such member (or it is a folder), -1 when the
 * archive cannot be opened or read, with a one-line reason in err (if not
 * NULL). */
int zip_read_member(const char *archive, const char *member, struct sb *out, struct sb *err);

#endif
