#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fk {
namespace {

// About 50 microseconds of spinning before a worker sleeps: longer than the gaps between the
// products of one layer, short enough not to compete with OpenBLAS's threads for long.
constexpr auto kSpin = std::chrono::microseconds(50);

struct Job {
  int n = 0;
  void (*fn)(void*, int) = nullptr;
  void* ctx = nullptr;
};

struct Pool {
  std::vector<std::thread> threads;
  std::mutex m;
  std::condition_variable cv;
  std::atomic<unsigned> gen{0};   // bumped once per job (and once to stop)
  std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  Job job;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  // The last job each worker has finished with: the caller returns (and may write the next job) only
  // once every worker has left this one, so that no worker reads a job being replaced.
  std::vector<std::atomic<unsigned>> acks;
  // Held by the thread whose job the pool runs: a second caller (another JS thread loading the addon)
  // runs its items alone instead of sharing the job's fields.
  std::mutex busy;

  void work() {
    const Job j = job;
    for (int i = next.fetch_add(1); i < j.n; i = next.fetch_add(1)) {
      j.fn(j.ctx, i);
      done.fetch_add(1);
    }
  }

  void worker(int w, unsigned seen) {
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      unsigned g;
      while ((g = gen.load()) == seen && std::chrono::steady_clock::now() < until) pause();
      if (g == seen) {
        std::unique_lock<std::mutex> lock(m);
        sleepers.fetch_add(1);
        cv.wait(lock, [&] { return gen.load() != seen; });
        sleepers.fetch_sub(1);
        g = gen.load();
      }
      seen = g;
      if (stop.load()) return;
      work();
      acks[w].store(g);
    }
  }

  void resize(int n) {
    std::lock_guard<std::mutex> hold(busy);
    if ((int)threads.size() == n) return;
    if (!threads.empty()) {
      {
        std::lock_guard<std::mutex> lock(m);
        stop.store(true);
        gen.fetch_add(1);
      }
      cv.notify_all();
      for (auto& t : threads) t.join();
      threads.clear();
      stop.store(false);
    }
    acks = std::vector<std::atomic<unsigned>>(n);
    const unsigned g = gen.load();
    for (int i = 0; i < n; i++) {
      acks[i].store(g);
      threads.emplace_back([this, i, g] { worker(i, g); });
    }
  }

  void run(int n, void (*fn)(void*, int), void* ctx) {
    std::unique_lock<std::mutex> hold(busy, std::try_to_lock);
    if (!hold.owns_lock() || threads.empty() || n <= 1) {
      for (int i = 0; i < n; i++) fn(ctx, i);
      return;
    }
    job = Job{n, fn, ctx};
    next.store(0);
    done.store(0);
    // Publishes the job (sequentially consistent: pairs with the workers' sleepers/gen checks).
    const unsigned g = gen.fetch_add(1) + 1;
    if (sleepers.load() > 0) {
      std::lock_guard<std::mutex> lock(m);
      cv.notify_all();
    }
    work();
    while (done.load() < n) pause();
    for (auto& a : acks) while (a.load() != g) pause();
  }

  static void pause() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
};

// Never destroyed: its threads end with the process.
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

void pool_set_workers(int n) { pool().resize(n < 0 ? 0 : n); }

void pool_run(int n, void (*fn)(void*, int), void* ctx) { pool().run(n, fn, ctx); }

}  // namespace fk
