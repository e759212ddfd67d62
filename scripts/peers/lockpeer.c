/*
 * lockpeer: the native C reference for mplock's lock kinds.
 *
 * It runs the workload of `mplock bank --lock --duration D` with an empty
 * critical section, in plain C, so that mplock's figures can be read as a
 * ratio to what the same loop costs without Go:
 *
 *   P processes (fork, default 2) share one MAP_SHARED page. They wait at a
 *   start barrier, then each loops until the parent sets the stop word:
 *     lock; note a handoff if the last holder was someone else;
 *     read the counter, write it back plus one; count the op in its own
 *     cache-line slot; unlock.
 *   atomic takes no lock: one atomic add per op (the lock-free bound).
 *
 * At the end the counter must equal the ops the processes counted: a lock
 * that let an update through is reported as consistent=0 and exit status 1.
 *
 * Output: one line of key=value pairs, for scripts:
 *   peer=c kind=futex procs=2 seconds=1.000 ops=15973417 ops_per_sec=15969000
 *   handoffs_per_1k=0.07 max_run=1048576 cpu_ns_per_op=125 cpus=1.99 consistent=1
 *
 * handoffs_per_1k (how often the lock changed holder) and cpus (CPU time of
 * all processes over wall time) tell the two regimes of a 2-process run
 * apart: both processes on their own CPU, contending (handoffs, cpus near
 * 2, or below for sleeping locks), or both on one CPU taking turns by time
 * slice (almost no handoffs, cpus near 1) - which the scheduler's wake-up
 * placement produces often, and which is faster, since nothing contends.
 *
 * With -a, child i is bound to the i-th CPU the program may run on (modulo
 * their number), as `mplock bank --pin` binds its workers: the processes then
 * contend from separate CPUs, whatever the scheduler would have chosen.
 *
 * Build: cc -O2 -o lockpeer lockpeer.c      (scripts/compare.sh does this)
 * Usage: lockpeer -k KIND [-p PROCS] [-d SECONDS] [-f LOCKFILE] [-a]
 * Kinds: atomic futex pthread flock ofd sysv spin
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64
#define LINE 64

enum kind { K_ATOMIC, K_FUTEX, K_PTHREAD, K_FLOCK, K_OFD, K_SYSV, K_SPIN };
static const char *kind_names[] = {"atomic", "futex", "pthread", "flock", "ofd", "sysv", "spin"};
#define NKINDS (sizeof kind_names / sizeof kind_names[0])

/* The shared page. Fields written by different parties sit on different
 * cache lines, as in mplock's region. */
struct shared {
	_Alignas(LINE) atomic_int start;
	atomic_int stop;
	atomic_int ready;
	_Alignas(LINE) atomic_int futex;      /* futex: 0 free, 1 held, 2 held with waiters */
	_Alignas(LINE) atomic_int spin;       /* spin: 0 free, 1 held */
	_Alignas(LINE) pthread_mutex_t mutex; /* pthread, process-shared */
	_Alignas(LINE) uint64_t counter;      /* the protected data */
	int holder;                           /* last holder, for handoffs */
	_Alignas(LINE) struct slot {
		_Alignas(LINE) atomic_uint_fast64_t ops;
		uint64_t handoffs, max_run;
		int64_t end_ns, cpu_ns;
	} slots[MAX_PROCS];
};

static struct shared *sh;
static enum kind kind;
static int semid = -1;
static int pin = 0; /* -a: bind child i to the i-th allowed CPU */

/* SIGINT or SIGTERM: stop the run and clean up (the SysV semaphore and the
 * lock file would otherwise outlive an interrupted run), then exit 130. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }
static const char *lockpath;

static void die(const char *what)
{
	fprintf(stderr, "lockpeer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long futex(atomic_int *addr, int op, int val)
{
	/* Shared between processes: never FUTEX_PRIVATE_FLAG. */
	return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* Drepper, "Futexes Are Tricky", mutex 3: the lock glibc's lowlevellock is
 * built on. No spinning before sleeping. */
static void futex_lock(atomic_int *f)
{
	int c = 0;
	if (atomic_compare_exchange_strong(f, &c, 1))
		return;
	if (c != 2)
		c = atomic_exchange(f, 2);
	while (c != 0) {
		futex(f, FUTEX_WAIT, 2);
		c = atomic_exchange(f, 2);
	}
}

static void futex_unlock(atomic_int *f)
{
	if (atomic_fetch_sub(f, 1) != 1) {
		atomic_store(f, 0);
		futex(f, FUTEX_WAKE, 1);
	}
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Test-and-test-and-set with a CPU pause, then sched_yield between looks:
 * the shape of mplock's spin kind (200 pauses before yielding). */
static void spin_lock(atomic_int *s)
{
	for (int i = 0;; i++) {
		int z = 0;
		if (atomic_load_explicit(s, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(s, &z, 1, memory_order_acquire, memory_order_relaxed))
			return;
		if (i < 200)
			cpu_relax();
		else
			sched_yield();
	}
}

static void spin_unlock(atomic_int *s) { atomic_store_explicit(s, 0, memory_order_release); }

static void semop1(int op)
{
	struct sembuf b = {.sem_num = 0, .sem_op = op, .sem_flg = SEM_UNDO};
	while (semop(semid, &b, 1) < 0)
		if (errno != EINTR)
			die("semop");
}

static void ofd_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			die("fcntl F_OFD_SETLKW");
}

static void flock1(int fd, int op)
{
	while (flock(fd, op) < 0)
		if (errno != EINTR)
			die("flock");
}

/* pin_to binds this process to the n-th CPU of those it may run on. */
static void pin_to(int n)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof allowed, &allowed) < 0)
		die("sched_getaffinity");
	int count = CPU_COUNT(&allowed), seen = 0;
	CPU_ZERO(&one);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, &allowed) && seen++ == n % count) {
			CPU_SET(cpu, &one);
			break;
		}
	}
	if (sched_setaffinity(0, sizeof one, &one) < 0)
		die("sched_setaffinity");
}

static void child(int me)
{
	struct slot *s = &sh->slots[me];
	int fd = -1;
	if (pin)
		pin_to(me);
	if (kind == K_FLOCK || kind == K_OFD) {
		/* Each process opens the file itself: flock and OFD locks belong
		 * to the open file description, so a shared one would not exclude. */
		fd = open(lockpath, O_RDWR);
		if (fd < 0)
			die(lockpath);
	}
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->start) == 0)
		futex(&sh->start, FUTEX_WAIT, 0);

	uint64_t ops = 0, handoffs = 0, run = 0, max_run = 0;
	while (atomic_load_explicit(&sh->stop, memory_order_relaxed) == 0) {
		if (kind == K_ATOMIC) {
			__atomic_fetch_add(&sh->counter, 1, __ATOMIC_SEQ_CST);
			atomic_store_explicit(&s->ops, ++ops, memory_order_relaxed);
			continue;
		}
		switch (kind) {
		case K_FUTEX: futex_lock(&sh->futex); break;
		case K_PTHREAD: pthread_mutex_lock(&sh->mutex); break;
		case K_FLOCK: flock1(fd, LOCK_EX); break;
		case K_OFD: ofd_lock(fd, F_WRLCK); break;
		case K_SYSV: semop1(-1); break;
		case K_SPIN: spin_lock(&sh->spin); break;
		default: break;
		}
		if (sh->holder != me + 1) {
			sh->holder = me + 1;
			handoffs++;
			run = 0;
		}
		if (++run > max_run)
			max_run = run;
		/* A plain read and write, on purpose: the lock must protect it. */
		uint64_t c = *(volatile uint64_t *)&sh->counter;
		*(volatile uint64_t *)&sh->counter = c + 1;
		atomic_store_explicit(&s->ops, ++ops, memory_order_relaxed);
		switch (kind) {
		case K_FUTEX: futex_unlock(&sh->futex); break;
		case K_PTHREAD: pthread_mutex_unlock(&sh->mutex); break;
		case K_FLOCK: flock1(fd, LOCK_UN); break;
		case K_OFD: ofd_lock(fd, F_UNLCK); break;
		case K_SYSV: semop1(1); break;
		case K_SPIN: spin_unlock(&sh->spin); break;
		default: break;
		}
	}
	s->end_ns = now_ns();
	s->handoffs = handoffs;
	s->max_run = max_run;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	s->cpu_ns = ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
		    ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
	_exit(0);
}

static void usage(void)
{
	fprintf(stderr, "usage: lockpeer -k KIND [-p PROCS] [-d SECONDS] [-f LOCKFILE] [-a]\nkinds:");
	for (size_t i = 0; i < NKINDS; i++)
		fprintf(stderr, " %s", kind_names[i]);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *kname = NULL;
	int procs = 2;
	double seconds = 1.0;
	char tmpl[4096];
	int opt;
	while ((opt = getopt(argc, argv, "k:p:d:f:ah")) != -1) {
		switch (opt) {
		case 'a': pin = 1; break;
		case 'k': kname = optarg; break;
		case 'p': procs = atoi(optarg); break;
		case 'd': seconds = atof(optarg); break;
		case 'f': lockpath = optarg; break;
		default: usage();
		}
	}
	if (!kname || procs < 1 || procs > MAX_PROCS || seconds <= 0)
		usage();
	size_t k;
	for (k = 0; k < NKINDS && strcmp(kname, kind_names[k]) != 0; k++)
		;
	if (k == NKINDS)
		usage();
	kind = (enum kind)k;

	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap");
	memset(sh, 0, sizeof *sh);
	if (kind == K_PTHREAD) {
		pthread_mutexattr_t a;
		pthread_mutexattr_init(&a);
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		if (pthread_mutex_init(&sh->mutex, &a) != 0)
			die("pthread_mutex_init");
	}
	int made_file = 0;
	if ((kind == K_FLOCK || kind == K_OFD) && !lockpath) {
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpl, sizeof tmpl, "%s/lockpeer-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		int fd = mkstemp(tmpl);
		if (fd < 0)
			die("mkstemp");
		close(fd);
		lockpath = tmpl;
		made_file = 1;
	}
	if (kind == K_SYSV) {
		semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
		if (semid < 0)
			die("semget");
		if (semctl(semid, 0, SETVAL, 1) < 0)
			die("semctl SETVAL");
	}

	/* No SA_RESTART: the signal must end the parent's sleep. The children
	 * inherit the handler and stop when the parent sets the stop word. */
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pid_t pids[MAX_PROCS];
	for (int i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0)
			child(i);
	}
	while (atomic_load(&sh->ready) < procs && !interrupted)
		sched_yield();
	int64_t t0 = now_ns();
	if (interrupted)
		atomic_store(&sh->stop, 1); /* before the start: no operation at all */
	atomic_store(&sh->start, 1);
	futex(&sh->start, FUTEX_WAKE, procs);
	struct timespec d = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (time_t)seconds) * 1e9)};
	while (!interrupted && nanosleep(&d, &d) < 0 && errno == EINTR)
		;
	atomic_store(&sh->stop, 1);

	int failed = 0;
	for (int i = 0; i < procs; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	if (semid >= 0)
		semctl(semid, 0, IPC_RMID);
	if (made_file)
		unlink(lockpath);
	if (interrupted) {
		fprintf(stderr, "lockpeer: interrupted; removed what the run made\n");
		return 130;
	}
	if (failed) {
		fprintf(stderr, "lockpeer: a worker process failed\n");
		return 2;
	}

	uint64_t ops = 0, handoffs = 0, max_run = 0;
	int64_t end = t0, cpu = 0;
	for (int i = 0; i < procs; i++) {
		struct slot *s = &sh->slots[i];
		ops += atomic_load(&s->ops);
		handoffs += s->handoffs;
		if (s->max_run > max_run)
			max_run = s->max_run;
		if (s->end_ns > end)
			end = s->end_ns;
		cpu += s->cpu_ns;
	}
	double wall = (double)(end - t0) / 1e9;
	int consistent = sh->counter == ops;
	printf("peer=c kind=%s procs=%d seconds=%.3f ops=%llu ops_per_sec=%.0f handoffs_per_1k=%.2f "
	       "max_run=%llu cpu_ns_per_op=%.0f cpus=%.2f pinned=%d consistent=%d\n",
	       kind_names[kind], procs, wall, (unsigned long long)ops, ops / wall,
	       kind == K_ATOMIC || ops == 0 ? 0.0 : 1000.0 * handoffs / ops,
	       (unsigned long long)max_run, ops ? (double)cpu / ops : 0.0, (double)cpu / 1e9 / wall, pin, consistent);
	if (!consistent) {
		fprintf(stderr, "lockpeer: %s lost updates: counter %llu, ops %llu\n", kind_names[kind],
			(unsigned long long)sh->counter, (unsigned long long)ops);
		return 1;
	}
	return 0;
}
