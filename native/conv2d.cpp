// 2-D convolution forward, backward-data and backward-weights through oneDNN, on the engine's
// plain layouts: activations NCHW, weights (C_out, C_in/G, kh, kw) (oneDNN's goihw when G > 1).
//
// A plan is built once per (kind, geometry, bias, layout policy) and cached. It holds up to two
// variants, because on NCHW data neither of oneDNN's routes wins everywhere (measured on a 2-core
// AVX-512 machine, ResNet-50 shapes; see bench/README.md):
//   blocked - oneDNN chooses every layout (nChw16c activations, blocked weights); the activations
//             are reordered in and out on every call. Best when compute dominates (3x3 convs).
//   plain   - oneDNN computes on NCHW directly (im2col + GEMM). Best for 1x1 convs over large maps,
//             where the activation reorders would cost more than the blocked kernel saves.
// The auto policy (the default) picks by geometry, the same way every run, so results are reproducible
// bit for bit: plain for 1x1 stride-1 convolutions, blocked for everything else. The tuned policy instead
// runs both variants on the first call of a plan, timing each, and keeps the faster one (a one-time cost
// of one or two extra passes per geometry; the choice can differ between runs, and so can the rounding). Weights a variant wants in another layout are reordered once per
// (weight_key, weight_version, plan, variant) through the weight cache.
#include <algorithm>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <cstring>

#include "engine_native.h"
#include "onednn_context.h"
#include "status.h"

namespace engine {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

enum class ConvKind { Forward, BackwardData, BackwardWeights };

const char* kind_name(ConvKind kind) {
    switch (kind) {
        case ConvKind::Forward: return "forward";
        case ConvKind::BackwardData: return "backward_data";
        default: return "backward_weights";
    }
}

std::string describe(const engine_conv2d_desc& d) {
    std::ostringstream s;
    s << "conv2d n=" << d.n << " c_in=" << d.c_in << " h=" << d.h << " w=" << d.w << " c_out=" << d.c_out
      << " kernel=" << d.kh << "x" << d.kw << " stride=" << d.stride_h << "x" << d.stride_w << " pad=" << d.pad_h
      << "x" << d.pad_w << " dil=" << d.dil_h << "x" << d.dil_w << " groups=" << d.groups << " out=" << d.out_h
      << "x" << d.out_w;
    return s.str();
}

[[noreturn]] void fail(const engine_conv2d_desc& d, const std::string& what) {
    throw std::invalid_argument(what + " (" + describe(d) + ")");
}

int64_t expected_out(int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride) {
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

void validate(const engine_conv2d_desc* d) {
    if (d == nullptr) throw std::invalid_argument("descriptor is NULL");
    if (d->n < 0) fail(*d, "n must be >= 0");
    if (d->c_in <= 0 || d->c_out <= 0 || d->h <= 0 || d->w <= 0)
        fail(*d, "c_in, c_out, h and w must be positive");
    if (d->kh <= 0 || d->kw <= 0) fail(*d, "kernel sizes must be positive");
    if (d->stride_h <= 0 || d->stride_w <= 0) fail(*d, "strides must be positive");
    if (d->dil_h <= 0 || d->dil_w <= 0) fail(*d, "dilations must be positive (1 = no dilation)");
    if (d->pad_h < 0 || d->pad_w < 0) fail(*d, "padding must be >= 0");
    if (d->groups <= 0) fail(*d, "groups must be positive");
    if (d->c_in % d->groups != 0 || d->c_out % d->groups != 0)
        fail(*d, "groups must divide both c_in and c_out");
    if (d->h + 2 * d->pad_h < d->dil_h * (d->kh - 1) + 1 || d->w + 2 * d->pad_w < d->dil_w * (d->kw - 1) + 1)
        fail(*d, "the dilated kernel is larger than the padded input");
    const int64_t oh = expected_out(d->h, d->pad_h, d->dil_h, d->kh, d->stride_h);
    const int64_t ow = expected_out(d->w, d->pad_w, d->dil_w, d->kw, d->stride_w);
    if (d->out_h != oh || d->out_w != ow) {
        std::ostringstream s;
        s << "out_h x out_w must be " << oh << "x" << ow << " = (in + 2*pad - dil*(k-1) - 1)/stride + 1";
        fail(*d, s.str());
    }
}

// Where an argument's data lives among a call's pointers.
enum Pointer { PSrc = 0, PDiffDst, PWeights, PBias, POut, PDiffBias, PointerCount };
enum class Role { Input, Weights, Output };

struct Arg {
    int dnnl_arg = 0;
    Pointer pointer = PSrc;
    Role role = Role::Input;
    WorkSlot slot = SlotIn0;
    memory::desc user;
    memory::desc impl;
    bool needs_reorder = false;
    dnnl::reorder convert;  // user -> impl for inputs and weights, impl -> user for outputs
};

struct Variant {
    dnnl::primitive primitive;
    std::vector<Arg> args;
    memory::desc scratchpad;
    std::string impl_name;
};

struct ConvPlan {
    std::string key;
    std::vector<Variant> variants;
    std::atomic<int> chosen{-1};
    std::mutex tune_mutex;
};

PlanCache<ConvPlan>& plans() {
    static PlanCache<ConvPlan> cache;
    return cache;
}

struct UserDescs {
    memory::desc src, weights, bias, dst;
};

UserDescs user_descs(const engine_conv2d_desc& d) {
    UserDescs u;
    u.src = memory::desc({d.n, d.c_in, d.h, d.w}, dt::f32, tag::nchw);
    u.dst = memory::desc({d.n, d.c_out, d.out_h, d.out_w}, dt::f32, tag::nchw);
    if (d.groups > 1)
        u.weights = memory::desc({d.groups, d.c_out / d.groups, d.c_in / d.groups, d.kh, d.kw}, dt::f32, tag::goihw);
    else
        u.weights = memory::desc({d.c_out, d.c_in, d.kh, d.kw}, dt::f32, tag::oihw);
    u.bias = memory::desc({d.c_out}, dt::f32, tag::x);
    return u;
}

Arg make_arg(int dnnl_arg, Pointer pointer, Role role, WorkSlot slot, const memory::desc& user,
             const memory::desc& impl) {
    Arg a;
    a.dnnl_arg = dnnl_arg;
    a.pointer = pointer;
    a.role = role;
    a.slot = slot;
    a.user = user;
    a.impl = impl;
    a.needs_reorder = !(user == impl);
    if (a.needs_reorder) {
        auto& eng = cpu_engine();
        if (role == Role::Output)
            a.convert = dnnl::reorder(dnnl::reorder::primitive_desc(eng, impl, eng, user));
        else
            a.convert = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user, eng, impl));
    }
    return a;
}

Variant build_variant(ConvKind kind, const engine_conv2d_desc& d, bool with_bias, bool blocked) {
    auto& eng = cpu_engine();
    const UserDescs u = user_descs(d);
    const tag act = blocked ? tag::any : tag::nchw;
    const memory::desc src_any({d.n, d.c_in, d.h, d.w}, dt::f32, act);
    const memory::desc dst_any({d.n, d.c_out, d.out_h, d.out_w}, dt::f32, act);
    const memory::desc wei_any(u.weights.dims(), dt::f32, tag::any);
    const memory::dims strides{d.stride_h, d.stride_w};
    const memory::dims dilation{d.dil_h - 1, d.dil_w - 1};  // oneDNN counts the gaps
    const memory::dims padding{d.pad_h, d.pad_w};
    const auto algo = dnnl::algorithm::convolution_direct;
    const auto attr = scratchpad_attr();

    // The forward descriptor also serves as the hint of the backward primitives.
    auto fwd_desc = with_bias && kind == ConvKind::Forward
        ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src_any, wei_any, u.bias,
                                          dst_any, strides, dilation, padding, padding)
        : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src_any, wei_any, dst_any,
                                          strides, dilation, padding, padding);
    dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, attr, eng);

    Variant v;
    if (kind == ConvKind::Forward) {
        v.primitive = dnnl::convolution_forward(fwd_pd);
        v.args.push_back(make_arg(DNNL_ARG_SRC, PSrc, Role::Input, SlotIn0, u.src, fwd_pd.src_desc()));
        v.args.push_back(make_arg(DNNL_ARG_WEIGHTS, PWeights, Role::Weights, SlotWeights, u.weights,
                                  fwd_pd.weights_desc()));
        if (with_bias)
            v.args.push_back(make_arg(DNNL_ARG_BIAS, PBias, Role::Input, SlotIn1, u.bias, fwd_pd.bias_desc()));
        v.args.push_back(make_arg(DNNL_ARG_DST, POut, Role::Output, SlotOut0, u.dst, fwd_pd.dst_desc()));
        v.scratchpad = fwd_pd.scratchpad_desc();
        v.impl_name = fwd_pd.impl_info_str();
    } else if (kind == ConvKind::BackwardData) {
        dnnl::convolution_backward_data::desc bd(algo, src_any, wei_any, dst_any, strides, dilation, padding,
                                                 padding);
        dnnl::convolution_backward_data::primitive_desc pd(bd, attr, eng, fwd_pd);
        v.primitive = dnnl::convolution_backward_data(pd);
        v.args.push_back(make_arg(DNNL_ARG_DIFF_DST, PDiffDst, Role::Input, SlotIn0, u.dst, pd.diff_dst_desc()));
        v.args.push_back(
            make_arg(DNNL_ARG_WEIGHTS, PWeights, Role::Weights, SlotWeights, u.weights, pd.weights_desc()));
        v.args.push_back(make_arg(DNNL_ARG_DIFF_SRC, POut, Role::Output, SlotOut0, u.src, pd.diff_src_desc()));
        v.scratchpad = pd.scratchpad_desc();
        v.impl_name = pd.impl_info_str();
    } else {
        auto wd = with_bias ? dnnl::convolution_backward_weights::desc(algo, src_any, wei_any, u.bias, dst_any,
                                                                       strides, dilation, padding, padding)
                            : dnnl::convolution_backward_weights::desc(algo, src_any, wei_any, dst_any, strides,
                                                                       dilation, padding, padding);
        dnnl::convolution_backward_weights::primitive_desc pd(wd, attr, eng, fwd_pd);
        v.primitive = dnnl::convolution_backward_weights(pd);
        v.args.push_back(make_arg(DNNL_ARG_SRC, PSrc, Role::Input, SlotIn0, u.src, pd.src_desc()));
        v.args.push_back(make_arg(DNNL_ARG_DIFF_DST, PDiffDst, Role::Input, SlotIn1, u.dst, pd.diff_dst_desc()));
        v.args.push_back(make_arg(DNNL_ARG_DIFF_WEIGHTS, POut, Role::Output, SlotOut0, u.weights,
                                  pd.diff_weights_desc()));
        if (with_bias)
            v.args.push_back(make_arg(DNNL_ARG_DIFF_BIAS, PDiffBias, Role::Output, SlotOut1, u.bias,
                                      pd.diff_bias_desc()));
        v.scratchpad = pd.scratchpad_desc();
        v.impl_name = pd.impl_info_str();
    }
    counters().primitives_created++;
    return v;
}

bool same_variant(const Variant& a, const Variant& b) {
    if (a.impl_name != b.impl_name || a.args.size() != b.args.size()) return false;
    for (size_t i = 0; i < a.args.size(); i++)
        if (!(a.args[i].impl == b.args[i].impl)) return false;
    return true;
}

std::string plan_key(ConvKind kind, const engine_conv2d_desc& d, bool with_bias, LayoutPolicy policy) {
    std::ostringstream s;
    s << kind_name(kind) << '|' << d.n << ',' << d.c_in << ',' << d.h << ',' << d.w << ',' << d.c_out << ','
      << d.kh << ',' << d.kw << ',' << d.stride_h << ',' << d.stride_w << ',' << d.pad_h << ',' << d.pad_w << ','
      << d.dil_h << ',' << d.dil_w << ',' << d.groups << '|' << with_bias << '|' << static_cast<int>(policy);
    return s.str();
}

std::shared_ptr<ConvPlan> get_plan(ConvKind kind, const engine_conv2d_desc& d, bool with_bias) {
    const LayoutPolicy policy = layout_policy();
    const std::string key = plan_key(kind, d, with_bias, policy);
    return plans().get(key, [&] {
        auto plan = std::make_shared<ConvPlan>();
        plan->key = key;
        LayoutPolicy effective = policy;
        if (policy == LayoutPolicy::Auto)
            effective = d.kh == 1 && d.kw == 1 && d.stride_h == 1 && d.stride_w == 1 ? LayoutPolicy::Plain : LayoutPolicy::Blocked;
        if (effective != LayoutPolicy::Plain) plan->variants.push_back(build_variant(kind, d, with_bias, true));
        if (effective != LayoutPolicy::Blocked) {
            Variant plain = build_variant(kind, d, with_bias, false);
            if (plan->variants.empty() || !same_variant(plan->variants[0], plain))
                plan->variants.push_back(std::move(plain));
        }
        if (plan->variants.size() == 1) plan->chosen = 0;
        return plan;
    });
}

// Runs one variant; returns the seconds spent after the weights were ready (what autotuning compares).
double run_variant(const ConvPlan& plan, size_t index, void* const* pointers, uint64_t weight_key,
                   uint64_t weight_version) {
    const Variant& v = plan.variants[index];
    auto& eng = cpu_engine();
    auto& stream = thread_stream();

    std::unordered_map<int, memory> exec_args;
    for (const Arg& a : v.args) {
        if (a.role != Role::Weights) continue;
        const auto* user = static_cast<const float*>(pointers[a.pointer]);
        if (!a.needs_reorder)
            exec_args.emplace(a.dnnl_arg, memory(a.user, eng, const_cast<float*>(user)));
        else
            exec_args.emplace(a.dnnl_arg, weight_cache().get(weight_key, weight_version,
                                                             plan.key + "#" + std::to_string(index), a.user,
                                                             user, a.impl, a.convert));
    }

    const auto start = std::chrono::steady_clock::now();
    std::vector<std::pair<memory, memory>> outputs_to_user;  // (impl, user)
    for (const Arg& a : v.args) {
        if (a.role == Role::Weights) continue;
        memory user(a.user, eng, pointers[a.pointer]);
        if (!a.needs_reorder) {
            exec_args.emplace(a.dnnl_arg, user);
            continue;
        }
        memory impl(a.impl, eng, thread_buffer(a.slot, a.impl.get_size()));
        if (a.role == Role::Input)
            a.convert.execute(stream, user, impl);
        else
            outputs_to_user.emplace_back(impl, user);
        exec_args.emplace(a.dnnl_arg, impl);
    }
    exec_args.emplace(DNNL_ARG_SCRATCHPAD,
                      memory(v.scratchpad, eng, thread_buffer(SlotScratchpad, v.scratchpad.get_size())));
    v.primitive.execute(stream, exec_args);
    size_t i = 0;
    for (const Arg& a : v.args)
        if (a.role == Role::Output && a.needs_reorder) {
            a.convert.execute(stream, outputs_to_user[i].first, outputs_to_user[i].second);
            i++;
        }
    stream.wait();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run(ConvKind kind, const engine_conv2d_desc* d, void* const* pointers, bool with_bias, uint64_t weight_key,
         uint64_t weight_version) {
    auto plan = get_plan(kind, *d, with_bias);
    int chosen = plan->chosen.load();
    if (chosen >= 0) {
        run_variant(*plan, static_cast<size_t>(chosen), pointers, weight_key, weight_version);
        return;
    }
    std::unique_lock<std::mutex> tuning(plan->tune_mutex, std::try_to_lock);
    if (!tuning.owns_lock()) {
        // Another thread is timing this plan right now; either variant gives the right answer.
        run_variant(*plan, 0, pointers, weight_key, weight_version);
        return;
    }
    // Grow this thread's work buffers for every variant first, so that no variant's timing includes
    // the first touch of memory another variant then reuses.
    for (const Variant& v : plan->variants) {
        thread_buffer(SlotScratchpad, v.scratchpad.get_size());
        for (const Arg& a : v.args)
            if (a.needs_reorder && a.role != Role::Weights) thread_buffer(a.slot, a.impl.get_size());
    }
    // Each variant writes the complete output, so the last run leaves a valid result. When the first
    // timings are within 30% of each other, one more run each (keeping the faster) guards the choice
    // against a single disturbed run.
    std::vector<double> times(plan->variants.size());
    for (size_t i = 0; i < times.size(); i++) times[i] = run_variant(*plan, i, pointers, weight_key, weight_version);
    const auto [fastest, slowest] = std::minmax_element(times.begin(), times.end());
    if (*slowest < 1.3 * *fastest)
        for (size_t i = 0; i < times.size(); i++)
            times[i] = std::min(times[i], run_variant(*plan, i, pointers, weight_key, weight_version));
    const int best_index = static_cast<int>(std::min_element(times.begin(), times.end()) - times.begin());
    // The output must come from the chosen variant, so that this call rounds exactly like later ones.
    if (static_cast<size_t>(best_index) != times.size() - 1)
        run_variant(*plan, static_cast<size_t>(best_index), pointers, weight_key, weight_version);
    plan->chosen = best_index;
}

template <typename F>
void with_context(const engine_conv2d_desc* d, F body) {
    validate(d);
    try {
        body();
    } catch (const dnnl::error& e) {
        throw std::runtime_error(std::string("oneDNN: ") + e.what() + " (" + describe(*d) + ")");
    } catch (const std::bad_alloc&) {
        throw std::runtime_error("out of memory (" + describe(*d) + ")");
    }
}

void require(const void* p, const char* name, const engine_conv2d_desc& d) {
    if (p == nullptr) fail(d, std::string(name) + " is NULL");
}

}  // namespace

size_t conv2d_cached_plans() { return plans().size(); }
void conv2d_clear_plans() { plans().clear(); }

}  // namespace engine

using engine::PointerCount;

extern "C" engine_status engine_conv2d_forward(const engine_conv2d_desc* desc, const float* src,
                                               const float* weights, const float* bias, float* dst,
                                               uint64_t weight_key, uint64_t weight_version) {
    ENGINE_TRY
    engine::with_context(desc, [&] {
        if (desc->n == 0) return;
        engine::require(src, "src", *desc);
        engine::require(weights, "weights", *desc);
        engine::require(dst, "dst", *desc);
        void* p[PointerCount] = {const_cast<float*>(src), nullptr, const_cast<float*>(weights),
                                 const_cast<float*>(bias), dst, nullptr};
        engine::run(engine::ConvKind::Forward, desc, p, bias != nullptr, weight_key, weight_version);
    });
    ENGINE_CATCH("engine_conv2d_forward")
}

extern "C" engine_status engine_conv2d_backward_data(const engine_conv2d_desc* desc, const float* diff_dst,
                                                     const float* weights, float* diff_src, uint64_t weight_key,
                                                     uint64_t weight_version) {
    ENGINE_TRY
    engine::with_context(desc, [&] {
        if (desc->n == 0) return;
        engine::require(diff_dst, "diff_dst", *desc);
        engine::require(weights, "weights", *desc);
        engine::require(diff_src, "diff_src", *desc);
        void* p[PointerCount] = {nullptr, const_cast<float*>(diff_dst), const_cast<float*>(weights), nullptr,
                                 diff_src, nullptr};
        engine::run(engine::ConvKind::BackwardData, desc, p, false, weight_key, weight_version);
    });
    ENGINE_CATCH("engine_conv2d_backward_data")
}

extern "C" engine_status engine_conv2d_backward_weights(const engine_conv2d_desc* desc, const float* src,
                                                        const float* diff_dst, float* diff_weights,
                                                        float* diff_bias) {
    ENGINE_TRY
    engine::with_context(desc, [&] {
        engine::require(diff_weights, "diff_weights", *desc);
        if (desc->n == 0) {
            // No samples: the gradients are sums over nothing.
            const int64_t count = desc->c_out * (desc->c_in / desc->groups) * desc->kh * desc->kw;
            std::memset(diff_weights, 0, sizeof(float) * static_cast<size_t>(count));
            if (diff_bias != nullptr) std::memset(diff_bias, 0, sizeof(float) * static_cast<size_t>(desc->c_out));
            return;
        }
        engine::require(src, "src", *desc);
        engine::require(diff_dst, "diff_dst", *desc);
        void* p[PointerCount] = {const_cast<float*>(src), const_cast<float*>(diff_dst), nullptr, nullptr,
                                 diff_weights, diff_bias};
        engine::run(engine::ConvKind::BackwardWeights, desc, p, diff_bias != nullptr, 0, 0);
    });
    ENGINE_CATCH("engine_conv2d_backward_weights")
}
