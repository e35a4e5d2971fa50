// Shared state of the oneDNN calls: the one CPU engine, a stream per calling thread, per-thread
// grow-only work buffers (for reordered activations and scratchpads, so a call in steady state
// allocates nothing large), the caches of plans and reordered weights, and their counters.
// Primitives are created with a user-managed scratchpad, so one cached primitive can run on
// several threads at once, each with its own scratchpad buffer.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace engine {

enum class LayoutPolicy : int32_t { Auto = 0, Blocked = 1, Plain = 2, Tuned = 3 };

struct Counters {
    std::atomic<uint64_t> primitives_created{0};
    std::atomic<uint64_t> weight_reorders{0};
};

// A 64-byte aligned buffer that only grows; one set per thread.
class WorkBuffer {
public:
    WorkBuffer() = default;
    WorkBuffer(const WorkBuffer&) = delete;
    WorkBuffer& operator=(const WorkBuffer&) = delete;
    ~WorkBuffer();
    void* get(size_t bytes);

private:
    void* data_ = nullptr;
    size_t capacity_ = 0;
};

// Slots of the per-thread work buffers; one call never uses a slot twice.
enum WorkSlot { SlotScratchpad = 0, SlotIn0, SlotIn1, SlotWeights, SlotOut0, SlotOut1, SlotCount };

dnnl::engine& cpu_engine();
dnnl::stream& thread_stream();
void* thread_buffer(WorkSlot slot, size_t bytes);
Counters& counters();
LayoutPolicy layout_policy();
void set_layout_policy(LayoutPolicy policy);
dnnl::primitive_attr scratchpad_attr();

// A reordered weight tensor and the parameter version it was made from.
struct CachedWeights {
    uint64_t version;
    dnnl::memory memory;
};

// Key of a cached weight tensor: the parameter's key and the plan (geometry, kind, layout)
// that wants it in a given layout.
struct WeightCacheKey {
    uint64_t weight_key;
    std::string plan_key;
    bool operator==(const WeightCacheKey& o) const { return weight_key == o.weight_key && plan_key == o.plan_key; }
};
struct WeightCacheKeyHash {
    size_t operator()(const WeightCacheKey& k) const {
        return std::hash<std::string>()(k.plan_key) ^ (std::hash<uint64_t>()(k.weight_key) * 0x9E3779B97F4A7C15ull);
    }
};

class WeightCache {
public:
    // Returns weights in layout `target`, reordering `user` only when (key, version, plan) is not
    // cached. key 0 reorders into the calling thread's SlotWeights buffer without caching.
    dnnl::memory get(uint64_t weight_key, uint64_t version, const std::string& plan_key,
                     const dnnl::memory::desc& user_md, const float* user, const dnnl::memory::desc& target,
                     const dnnl::reorder& to_target);
    uint64_t reorders_for_key(uint64_t weight_key);
    size_t size();
    void clear();
    // Drops every cached layout of one weight (its tensor was freed).
    void forget(uint64_t weight_key);

private:
    std::mutex mutex_;
    std::unordered_map<WeightCacheKey, std::shared_ptr<CachedWeights>, WeightCacheKeyHash> entries_;
    std::unordered_map<uint64_t, uint64_t> reorders_per_key_;
};

WeightCache& weight_cache();

// A thread-safe map from a shape key to a plan, built once per key.
template <typename Plan>
class PlanCache {
public:
    template <typename Make>
    std::shared_ptr<Plan> get(const std::string& key, Make make) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = entries_.find(key);
            if (it != entries_.end()) return it->second;
        }
        // Built outside the lock: primitive creation (JIT) can take milliseconds and other
        // shapes should not wait for it. Two threads racing on one new key both build; one wins.
        auto plan = make();
        std::lock_guard<std::mutex> lock(mutex_);
        auto inserted = entries_.emplace(key, plan);
        return inserted.first->second;
    }
    size_t size() {
        std::lock_guard<std::mutex> lock(mutex_);
        return entries_.size();
    }
    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        entries_.clear();
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<Plan>> entries_;
};

// The plan caches of the convolutions (conv2d.cpp) and matmul (matmul.cpp).
size_t conv2d_cached_plans();
void conv2d_clear_plans();
size_t matmul_cached_plans();
void matmul_clear_plans();

}  // namespace engine
