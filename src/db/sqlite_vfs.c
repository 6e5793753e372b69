/*
 * sqlite_vfs.c — a VFS shim that gives all the process's connections one
 * memory map of the database file, kept across commits.
 *
 * Why: in WAL mode, SQLite's pager unmaps the whole file (xUnfetch with
 * no page) at the start of every read transaction that finds the WAL
 * changed since the connection's last one, i.e. after any other
 * connection's commit. The server has one connection per thread, so
 * nearly every request starts with its connection's map gone; the next
 * walk of a dataset's image list (an in-place edit of one image walks the
 * list's overflow chain up to the edit, docs/images.md) then faults the
 * whole chain back in: ~280 faults at 100,000 images, 6-7 ms of a 1 ms
 * add on this machine, ten times that at 10^6 images. And each
 * connection's own map counts the same file pages again in the process's
 * resident memory.
 *
 * SQLite unmaps there for one case (its comment in sqlite3PagerSharedLock):
 * another process truncated the file and grew it back to the same size,
 * leaving a map that looks valid but is not. On Linux a MAP_SHARED map
 * reads the file's page cache, so it stays valid through any write,
 * truncation and growth of the file; what a map can do wrong is reach
 * past the file's end (SIGBUS). So the shim maps the file once per
 * process (one map per file, the size of the mmap limit, made on the
 * first fetch), hands out pages only below the file size it last saw
 * (fstat'ed again when a fetch asks past it, when the pager would have
 * unmapped, and after a truncation), and never unmaps: SQLite itself
 * never reads a page past the end of the database as its snapshot sees it,
 * and the WAL's checkpoint shortens the file only when no reader needs
 * the pages past the new end, so a page below a size seen once is either
 * still in the file or not asked for. The same holds for SQLite's own map.
 *
 * The map reads through a descriptor of its own (read-only, close-on-exec)
 * that stays open, with the map, for the life of the process: closing any
 * descriptor of a file drops the process's POSIX locks on it, SQLite's
 * included (the reason SQLite's unix VFS defers its own closes). One
 * descriptor and one reserved address range per database file the process
 * opens; the server opens one.
 *
 * Only the main database file is wrapped; journals and the WAL are opened
 * as the underlying VFS opens them, in the same buffer, with its methods.
 * Every other method of the main file forwards to the underlying one; the
 * underlying file is told a mmap limit of 0, so that it never maps the
 * file itself.
 */
#include "db/sqlite_vfs.h"

#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One per database file (device and inode) the process has opened. */
struct shared_map {
	dev_t dev;
	ino_t ino;
	int fd;			   /* read-only, never closed */
	unsigned char *base;	   /* NULL until the first fetch; then never unmapped */
	sqlite3_int64 len;	   /* bytes reserved at base */
	sqlite3_int64 size;	   /* the file's size when last seen; pages end below it */
	struct shared_map *next;
};

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_map *maps;

struct mapfile {
	sqlite3_file base;	   /* pMethods = &mapfile_methods */
	struct shared_map *map;	   /* NULL: pages through reads only */
	sqlite3_int64 limit;	   /* the connection's mmap limit (SQLITE_FCNTL_MMAP_SIZE) */
	sqlite3_file *real;	   /* the underlying file, in this same allocation */
};

/* SQLite asks for this many readable bytes past a page it maps (a
 * corrupt page may make it read a little past its end). */
#define EOF_ROOM 256

/* SQLite's own ceiling on a map (SQLITE_MAX_MMAP_SIZE's default). */
#define LIMIT_MAX ((sqlite3_int64)0x7fff0000)

#define REAL_OFFSET ((sizeof(struct mapfile) + 15) & ~(size_t)15)

static sqlite3_vfs shim;
static sqlite3_vfs *under;
static sqlite3_io_methods mapfile_methods;

#define REAL(f) (((struct mapfile *)(f))->real)

static int mf_close(sqlite3_file *f)
{
	sqlite3_file *r = REAL(f);
	int rc = r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
	f->pMethods = NULL;
	return rc;
}

static int mf_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int mf_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

/* base and size are read without the lock (a fetch per page of a walk);
 * base is set once, size is a whole 64-bit value written atomically. */
static void map_refresh(struct shared_map *m)
{
	struct stat st;
	sqlite3_int64 size = fstat(m->fd, &st) == 0 ? (sqlite3_int64)st.st_size : 0;
	__atomic_store_n(&m->size, size, __ATOMIC_RELEASE);
}

static int mf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct mapfile *mf = (struct mapfile *)f;
	int rc = mf->real->pMethods->xTruncate(mf->real, size);
	if (mf->map)
		map_refresh(mf->map);
	return rc;
}

static int mf_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int mf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int mf_lock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int mf_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int mf_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int mf_file_control(sqlite3_file *f, int op, void *arg)
{
	struct mapfile *mf = (struct mapfile *)f;
	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		/* the limit is the shim's; the underlying file keeps 0 and
		 * answers with the previous limit, as it would have */
		sqlite3_int64 want = *(sqlite3_int64 *)arg;
		*(sqlite3_int64 *)arg = mf->limit;
		if (want >= 0)
			mf->limit = want < LIMIT_MAX ? want : LIMIT_MAX;
		return SQLITE_OK;
	}
	return mf->real->pMethods->xFileControl(mf->real, op, arg);
}

static int mf_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int mf_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int mf_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, pp);
}

static int mf_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void mf_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int mf_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static unsigned char *map_base(struct shared_map *m, sqlite3_int64 limit)
{
	unsigned char *base = __atomic_load_n(&m->base, __ATOMIC_ACQUIRE);
	if (base)
		return base;
	pthread_mutex_lock(&maps_lock);
	if (!m->base) {
		void *p = mmap(NULL, (size_t)limit, PROT_READ, MAP_SHARED, m->fd, 0);
		if (p != MAP_FAILED) {
			m->len = limit;
			__atomic_store_n(&m->base, (unsigned char *)p, __ATOMIC_RELEASE);
		}
	}
	base = m->base;
	pthread_mutex_unlock(&maps_lock);
	return base;
}

static int mf_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	struct mapfile *mf = (struct mapfile *)f;
	struct shared_map *m = mf->map;
	sqlite3_int64 end = off + n + EOF_ROOM;
	*pp = NULL;
	if (!m || end > mf->limit)
		return SQLITE_OK;
	unsigned char *base = map_base(m, mf->limit);
	if (!base || end > m->len)
		return SQLITE_OK;
	if (end > __atomic_load_n(&m->size, __ATOMIC_ACQUIRE)) {
		/* past the size last seen: the file may have grown */
		map_refresh(m);
		if (end > __atomic_load_n(&m->size, __ATOMIC_ACQUIRE))
			return SQLITE_OK;
	}
	*pp = base + off;
	return SQLITE_OK;
}

static int mf_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	(void)off;
	struct mapfile *mf = (struct mapfile *)f;
	/* a page given back: nothing to do. "Unmap the file": the file may
	 * have changed size; the map stays */
	if (!p && mf->map)
		map_refresh(mf->map);
	return SQLITE_OK;
}

/* The process's map of the file at name, registered on the first call for
 * the file (its own descriptor opened then); NULL when it cannot be. */
static struct shared_map *map_of(const char *name)
{
	struct stat st;
	if (stat(name, &st) != 0)
		return NULL;
	pthread_mutex_lock(&maps_lock);
	struct shared_map *m = maps;
	while (m && !(m->dev == st.st_dev && m->ino == st.st_ino))
		m = m->next;
	if (!m) {
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		struct stat fst;
		/* the descriptor is kept even when it turns out not to be of
		 * the file stat saw (replaced in between): any close of a
		 * descriptor of a file drops the process's locks on it */
		if (fd >= 0 && fstat(fd, &fst) == 0 && (m = calloc(1, sizeof(*m)))) {
			m->dev = fst.st_dev;
			m->ino = fst.st_ino;
			m->fd = fd;
			m->size = (sqlite3_int64)fst.st_size;
			m->next = maps;
			maps = m;
		}
	}
	pthread_mutex_unlock(&maps_lock);
	return m;
}

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	(void)vfs;
	if (!(flags & SQLITE_OPEN_MAIN_DB) || !name) {
		/* not wrapped: the underlying file fills the buffer from its start */
		return under->xOpen(under, name, f, flags, out_flags);
	}
	struct mapfile *mf = (struct mapfile *)f;
	mf->real = (sqlite3_file *)((char *)f + REAL_OFFSET);
	mf->map = NULL;
	mf->limit = 0;
	f->pMethods = NULL;
	int rc = under->xOpen(under, name, mf->real, flags, out_flags);
	if (rc != SQLITE_OK || !mf->real->pMethods)
		return rc;
	mf->map = map_of(name);
	f->pMethods = &mapfile_methods;
	return SQLITE_OK;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed;

static void install(void)
{
	under = sqlite3_vfs_find(NULL);
	if (!under)
		return;
	shim = *under;
	shim.szOsFile = (int)REAL_OFFSET + under->szOsFile;
	shim.zName = "fractal-map";
	shim.pNext = NULL;
	shim.xOpen = shim_open;
	mapfile_methods = (sqlite3_io_methods){
		.iVersion = 3,
		.xClose = mf_close,
		.xRead = mf_read,
		.xWrite = mf_write,
		.xTruncate = mf_truncate,
		.xSync = mf_sync,
		.xFileSize = mf_file_size,
		.xLock = mf_lock,
		.xUnlock = mf_unlock,
		.xCheckReservedLock = mf_check_reserved,
		.xFileControl = mf_file_control,
		.xSectorSize = mf_sector_size,
		.xDeviceCharacteristics = mf_device_characteristics,
		.xShmMap = mf_shm_map,
		.xShmLock = mf_shm_lock,
		.xShmBarrier = mf_shm_barrier,
		.xShmUnmap = mf_shm_unmap,
		.xFetch = mf_fetch,
		.xUnfetch = mf_unfetch,
	};
	installed = sqlite3_vfs_register(&shim, 0) == SQLITE_OK;
}

const char *sqlite_vfs_name(void)
{
	pthread_once(&once, install);
	return installed ? shim.zName : NULL;
}
