// The one CPU engine, per-thread streams and work buffers, the weight cache and the counters
// declared in onednn_context.h.
#include "onednn_context.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace engine {

WorkBuffer::~WorkBuffer() { std::free(data_); }

void* WorkBuffer::get(size_t bytes) {
    if (bytes <= capacity_ && data_ != nullptr) return data_;
    // Grow by at least half again, so a slowly growing sequence of shapes reallocates rarely.
    size_t want = bytes + bytes / 2 + 64;
    want = (want + 63) / 64 * 64;
    std::free(data_);
    data_ = std::aligned_alloc(64, want);
    if (data_ == nullptr) {
        capacity_ = 0;
        throw std::bad_alloc();
    }
    capacity_ = want;
    // Touch every page now, so that page faults are paid once here and never inside a timed call
    // (the layout autotuning in conv2d.cpp compares single runs).
    std::memset(data_, 0, want);
    return data_;
}

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

dnnl::stream& thread_stream() {
    // oneDNN streams are not meant to be shared between threads; each caller gets its own.
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

void* thread_buffer(WorkSlot slot, size_t bytes) {
    thread_local WorkBuffer buffers[SlotCount];
    return buffers[slot].get(bytes);
}

Counters& counters() {
    static Counters c;
    return c;
}

static LayoutPolicy initial_policy() {
    const char* env = std::getenv("ENGINE_ONEDNN_LAYOUT");
    if (env == nullptr) return LayoutPolicy::Auto;
    if (std::strcmp(env, "blocked") == 0) return LayoutPolicy::Blocked;
    if (std::strcmp(env, "plain") == 0) return LayoutPolicy::Plain;
    if (std::strcmp(env, "tuned") == 0) return LayoutPolicy::Tuned;
    return LayoutPolicy::Auto;
}

static std::atomic<int32_t>& policy_cell() {
    static std::atomic<int32_t> policy{static_cast<int32_t>(initial_policy())};
    return policy;
}

LayoutPolicy layout_policy() { return static_cast<LayoutPolicy>(policy_cell().load()); }
void set_layout_policy(LayoutPolicy policy) { policy_cell().store(static_cast<int32_t>(policy)); }

dnnl::primitive_attr scratchpad_attr() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

dnnl::memory WeightCache::get(uint64_t weight_key, uint64_t version, const std::string& plan_key,
                              const dnnl::memory::desc& user_md, const float* user,
                              const dnnl::memory::desc& target, const dnnl::reorder& to_target) {
    auto& eng = cpu_engine();
    dnnl::memory source(user_md, eng, const_cast<float*>(user));
    if (weight_key == 0) {
        dnnl::memory out(target, eng, thread_buffer(SlotWeights, target.get_size()));
        to_target.execute(thread_stream(), source, out);
        thread_stream().wait();
        counters().weight_reorders++;
        return out;
    }
    WeightCacheKey key{weight_key, plan_key};
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second->version == version) return it->second->memory;
    }
    // A fresh buffer rather than an overwrite: a thread still computing with the previous
    // version keeps its own reference to it.
    auto entry = std::make_shared<CachedWeights>();
    entry->version = version;
    entry->memory = dnnl::memory(target, eng);
    to_target.execute(thread_stream(), source, entry->memory);
    thread_stream().wait();
    counters().weight_reorders++;
    std::lock_guard<std::mutex> lock(mutex_);
    reorders_per_key_[weight_key]++;
    entries_[key] = entry;
    return entry->memory;
}

uint64_t WeightCache::reorders_for_key(uint64_t weight_key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = reorders_per_key_.find(weight_key);
    return it == reorders_per_key_.end() ? 0 : it->second;
}

size_t WeightCache::size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

void WeightCache::clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
}

void WeightCache::forget(uint64_t weight_key) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();)
        it = it->first.weight_key == weight_key ? entries_.erase(it) : std::next(it);
}

WeightCache& weight_cache() {
    static WeightCache cache;
    return cache;
}

}  // namespace engine
