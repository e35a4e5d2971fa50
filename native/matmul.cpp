// Batched float32 matrix product through oneDNN's matmul primitive: C[b] = op(A[b]) @ op(B[b]).
// The operands are described to oneDNN by strides, so transposes, leading dimensions and batch
// strides cost no copy: A (batch, m, k) has strides (batch_stride_a, lda, 1), or (batch_stride_a, 1, lda)
// when stored transposed. A batch stride of 0 becomes a batch dimension of 1, which oneDNN
// broadcasts over the other operand's batch. Primitives are cached per descriptor.
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "engine_native.h"
#include "onednn_context.h"
#include "status.h"

namespace engine {
namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;

struct MatmulPlan {
    dnnl::matmul primitive;
    memory::desc a, b, c, scratchpad;
};

PlanCache<MatmulPlan>& plans() {
    static PlanCache<MatmulPlan> cache;
    return cache;
}

std::string describe(const engine_matmul_desc& d) {
    std::ostringstream s;
    s << "matmul batch=" << d.batch << " m=" << d.m << " n=" << d.n << " k=" << d.k << " trans_a=" << d.trans_a
      << " trans_b=" << d.trans_b << " lda=" << d.lda << " ldb=" << d.ldb << " ldc=" << d.ldc
      << " batch_stride_a=" << d.batch_stride_a << " batch_stride_b=" << d.batch_stride_b
      << " batch_stride_c=" << d.batch_stride_c;
    return s.str();
}

[[noreturn]] void fail(const engine_matmul_desc& d, const std::string& what) {
    throw std::invalid_argument(what + " (" + describe(d) + ")");
}

void validate(const engine_matmul_desc* d) {
    if (d == nullptr) throw std::invalid_argument("descriptor is NULL");
    if (d->batch < 0 || d->m < 0 || d->n < 0 || d->k < 0) fail(*d, "batch, m, n and k must be >= 0");
    const int64_t a_cols = d->trans_a ? d->m : d->k;
    const int64_t b_cols = d->trans_b ? d->k : d->n;
    if (d->lda < std::max<int64_t>(a_cols, 1))
        fail(*d, d->trans_a ? "lda must be >= m (A is stored k x m)" : "lda must be >= k (A is stored m x k)");
    if (d->ldb < std::max<int64_t>(b_cols, 1))
        fail(*d, d->trans_b ? "ldb must be >= k (B is stored n x k)" : "ldb must be >= n (B is stored k x n)");
    if (d->ldc < std::max<int64_t>(d->n, 1)) fail(*d, "ldc must be >= n");
    if (d->batch_stride_a < 0 || d->batch_stride_b < 0) fail(*d, "batch strides must be >= 0 (0 = broadcast)");
    if (d->batch > 1 && d->m > 0 && d->n > 0 && d->batch_stride_c < (d->m - 1) * d->ldc + d->n)
        fail(*d, "batch_stride_c must be >= (m-1)*ldc + n so that the outputs do not overlap");
}

memory::desc operand(int64_t batch, int64_t rows, int64_t cols, bool transposed, int64_t ld, int64_t stride) {
    // Logical (batch, rows, cols); stored row-major as (rows, cols), or as (cols, rows) when transposed.
    const int64_t extent = transposed ? cols * ld : rows * ld;
    const int64_t batch_stride = batch == 1 ? std::max<int64_t>(extent, 1) : stride;
    memory::dims strides = transposed ? memory::dims{batch_stride, 1, ld} : memory::dims{batch_stride, ld, 1};
    return memory::desc({batch, rows, cols}, dt::f32, strides);
}

std::shared_ptr<MatmulPlan> get_plan(const engine_matmul_desc& d, int64_t batch) {
    std::ostringstream key;
    key << batch << ',' << d.m << ',' << d.n << ',' << d.k << ',' << d.trans_a << ',' << d.trans_b << ',' << d.lda
        << ',' << d.ldb << ',' << d.ldc << ',' << d.batch_stride_a << ',' << d.batch_stride_b << ','
        << d.batch_stride_c;
    return plans().get(key.str(), [&] {
        auto plan = std::make_shared<MatmulPlan>();
        const int64_t batch_a = d.batch_stride_a == 0 ? 1 : batch;
        const int64_t batch_b = d.batch_stride_b == 0 ? 1 : batch;
        plan->a = operand(batch_a, d.m, d.k, d.trans_a != 0, d.lda, d.batch_stride_a);
        plan->b = operand(batch_b, d.k, d.n, d.trans_b != 0, d.ldb, d.batch_stride_b);
        plan->c = operand(batch, d.m, d.n, false, d.ldc, d.batch_stride_c);
        dnnl::matmul::desc md(plan->a, plan->b, plan->c);
        dnnl::matmul::primitive_desc pd(md, scratchpad_attr(), cpu_engine());
        plan->primitive = dnnl::matmul(pd);
        plan->scratchpad = pd.scratchpad_desc();
        counters().primitives_created++;
        return plan;
    });
}

void matmul(const engine_matmul_desc& d, const float* a, const float* b, float* c) {
    if (d.batch == 0 || d.m == 0 || d.n == 0) return;
    if (c == nullptr) fail(d, "c is NULL");
    if (d.k == 0) {
        // An empty sum: every output element is 0.
        for (int64_t i = 0; i < d.batch; i++)
            for (int64_t r = 0; r < d.m; r++)
                std::memset(c + i * d.batch_stride_c + r * d.ldc, 0, sizeof(float) * static_cast<size_t>(d.n));
        return;
    }
    if (a == nullptr || b == nullptr) fail(d, "a or b is NULL");
    // Both operands broadcast: every output matrix is the same product; compute it once and copy.
    const bool both_broadcast = d.batch > 1 && d.batch_stride_a == 0 && d.batch_stride_b == 0;
    const int64_t batch = both_broadcast ? 1 : d.batch;
    auto plan = get_plan(d, batch);
    auto& eng = cpu_engine();
    auto& stream = thread_stream();
    plan->primitive.execute(
        stream, {{DNNL_ARG_SRC, memory(plan->a, eng, const_cast<float*>(a))},
                 {DNNL_ARG_WEIGHTS, memory(plan->b, eng, const_cast<float*>(b))},
                 {DNNL_ARG_DST, memory(plan->c, eng, c)},
                 {DNNL_ARG_SCRATCHPAD,
                  memory(plan->scratchpad, eng, thread_buffer(SlotScratchpad, plan->scratchpad.get_size()))}});
    stream.wait();
    if (both_broadcast)
        for (int64_t i = 1; i < d.batch; i++)
            for (int64_t r = 0; r < d.m; r++)
                std::memcpy(c + i * d.batch_stride_c + r * d.ldc, c + r * d.ldc,
                            sizeof(float) * static_cast<size_t>(d.n));
}

}  // namespace

size_t matmul_cached_plans() { return plans().size(); }
void matmul_clear_plans() { plans().clear(); }

}  // namespace engine

extern "C" engine_status engine_matmul(const engine_matmul_desc* desc, const float* a, const float* b, float* c) {
    ENGINE_TRY
    engine::validate(desc);
    try {
        engine::matmul(*desc, a, b, c);
    } catch (const dnnl::error& e) {
        throw std::runtime_error(std::string("oneDNN: ") + e.what() + " (" + engine::describe(*desc) + ")");
    } catch (const std::bad_alloc&) {
        throw std::runtime_error("out of memory (" + engine::describe(*desc) + ")");
    }
    ENGINE_CATCH("engine_matmul")
}
