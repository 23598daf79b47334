// A small persistent thread pool for the kernels that split their own work (attention, the packed
// products): items 0..n-1 are dealt to the calling thread and the workers through one atomic
// counter. Workers spin briefly between jobs (a layer issues its products microseconds apart), then
// sleep, so that an idle pool does not take a core from OpenBLAS's own threads.
#pragma once

#include <type_traits>

namespace fk {

// Workers beside the calling thread (threads - 1); 0 runs every job on the caller.
void pool_set_workers(int n);

// Runs fn(ctx, i) for i in 0..n-1 across the caller and the workers; returns when all are done.
// Items must not depend on one another or on which thread runs them.
void pool_run(int n, void (*fn)(void*, int), void* ctx);

template <typename F>
void parallel_items(int n, F&& f) {
  pool_run(n, [](void* c, int i) { (*static_cast<std::remove_reference_t<F>*>(c))(i); }, &f);
}

}  // namespace fk
