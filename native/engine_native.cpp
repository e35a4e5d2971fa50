// Error plumbing, version, threading report, layout policy, cache statistics and cache reset of
// the native library. The convolutions live in conv2d.cpp, the matrix product in matmul.cpp.
#include <omp.h>

#include "engine_native.h"
#include "onednn_context.h"
#include "status.h"

namespace engine {
thread_local std::string g_last_error;
}

extern "C" const char* engine_last_error(void) { return engine::g_last_error.c_str(); }

// 2: conv2d (forward, backward-data, backward-weights), matmul, layout policy, cache statistics.
// 3: engine_onednn_forget_weights; the tuned layout policy (auto became a fixed rule by geometry).
extern "C" int32_t engine_native_abi_version(void) { return 3; }

extern "C" int32_t engine_native_max_threads(void) { return omp_get_max_threads(); }

extern "C" engine_status engine_onednn_set_layout_policy(int32_t policy) {
    ENGINE_TRY
    if (policy < 0 || policy > 3)
        throw std::invalid_argument("policy " + std::to_string(policy) + " is not 0 (auto), 1 (blocked), 2 (plain) or 3 (tuned)");
    engine::set_layout_policy(static_cast<engine::LayoutPolicy>(policy));
    ENGINE_CATCH("engine_onednn_set_layout_policy")
}

extern "C" int32_t engine_onednn_get_layout_policy(void) { return static_cast<int32_t>(engine::layout_policy()); }

extern "C" engine_status engine_onednn_get_stats(engine_onednn_stats* stats) {
    ENGINE_TRY
    if (stats == nullptr) throw std::invalid_argument("stats is NULL");
    stats->primitives_created = engine::counters().primitives_created.load();
    stats->weight_reorders = engine::counters().weight_reorders.load();
    stats->cached_plans = engine::conv2d_cached_plans() + engine::matmul_cached_plans();
    stats->cached_weights = engine::weight_cache().size();
    ENGINE_CATCH("engine_onednn_get_stats")
}

extern "C" uint64_t engine_onednn_weight_reorders_for_key(uint64_t weight_key) {
    return engine::weight_cache().reorders_for_key(weight_key);
}

extern "C" engine_status engine_onednn_forget_weights(uint64_t weight_key) {
    ENGINE_TRY
    engine::weight_cache().forget(weight_key);
    ENGINE_CATCH("engine_onednn_forget_weights")
}

extern "C" engine_status engine_onednn_clear_caches(void) {
    ENGINE_TRY
    engine::conv2d_clear_plans();
    engine::matmul_clear_plans();
    engine::weight_cache().clear();
    ENGINE_CATCH("engine_onednn_clear_caches")
}
