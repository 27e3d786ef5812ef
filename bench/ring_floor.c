/* The floor under any shared-memory pipe on this machine: one process copies 64-byte messages into a ring in shared memory, another copies them out, with no locks, no futexes and no checks, each side spinning on the other's position.
 *
 * What conc's `Pipe` (a lock per side, futex sleeps, a peer check) and
 * Python's `multiprocessing.Pipe` (a socket) add on top of this is
 * theirs; what this costs is the cache lines moving between the two
 * cores. bench/process_pairs.py builds and runs it beside them.
 *
 *     cc -O2 -o /tmp/ring_floor bench/ring_floor.c && /tmp/ring_floor [N] [REPEATS]
 *
 * Prints the median msgs/s over REPEATS (default 3) runs of N (default
 * 2,000,000) messages, in process_costs' format. The receiver copies each
 * message into a fresh malloc'd buffer, as a `recv_bytes` must.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING (256 * 1024)
#define MSG 64
#define REC (4 + MSG)

struct shared {
    _Alignas(64) _Atomic uint64_t tail; /* bytes written */
    _Alignas(64) _Atomic uint64_t head; /* bytes read */
    _Alignas(64) _Atomic int go;
    _Alignas(64) unsigned char ring[RING];
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void copy_in(struct shared *s, uint64_t at, const void *src, size_t len) {
    size_t off = at % RING, first = len < RING - off ? len : RING - off;
    memcpy(s->ring + off, src, first);
    memcpy(s->ring, (const char *)src + first, len - first);
}

static void copy_out(struct shared *s, uint64_t at, void *dst, size_t len) {
    size_t off = at % RING, first = len < RING - off ? len : RING - off;
    memcpy(dst, s->ring + off, first);
    memcpy((char *)dst + first, s->ring, len - first);
}

static double one_run(long n) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        unsigned char msg[MSG];
        memset(msg, 'x', MSG);
        uint32_t len = MSG;
        while (!atomic_load(&s->go))
            ;
        uint64_t tail = 0;
        for (long i = 0; i < n; i++) {
            while (tail + REC - atomic_load_explicit(&s->head, memory_order_acquire) > RING)
                __builtin_ia32_pause();
            copy_in(s, tail, &len, 4);
            copy_in(s, tail + 4, msg, MSG);
            tail += REC;
            atomic_store_explicit(&s->tail, tail, memory_order_release);
        }
        _exit(0);
    }
    double start = now_s();
    atomic_store(&s->go, 1);
    uint64_t head = 0;
    for (long i = 0; i < n; i++) {
        while (atomic_load_explicit(&s->tail, memory_order_acquire) == head)
            __builtin_ia32_pause();
        uint32_t len;
        copy_out(s, head, &len, 4);
        unsigned char *out = malloc(len);
        copy_out(s, head + 4, out, len);
        if (out[0] != 'x' || len != MSG) {
            fprintf(stderr, "torn message\n");
            exit(1);
        }
        free(out);
        head += 4 + len;
        atomic_store_explicit(&s->head, head, memory_order_release);
    }
    double rate = n / (now_s() - start);
    waitpid(pid, NULL, 0);
    munmap(s, sizeof *s);
    return rate;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || repeats < 1 || repeats > 100) {
        fprintf(stderr, "usage: %s [N >= 1] [REPEATS 1..100]\n", argv[0]);
        return 2;
    }
    double rates[100];
    one_run(n / 10); /* warm up */
    for (int r = 0; r < repeats; r++)
        rates[r] = one_run(n);
    qsort(rates, repeats, sizeof rates[0], by_value);
    printf("ring floor (C: spin, no locks): %.3f msgs/s (%ld x 64 B, one way; min %.3f, max %.3f, %d repeats)\n",
           rates[repeats / 2], n, rates[0], rates[repeats - 1], repeats);
    return 0;
}
