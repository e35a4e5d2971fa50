// Plain oneDNN timing of the shapes of bench/Engine.Bench (ResNet-50 convolutions and the box-head FC),
// the peer the engine's oneDNN shim is measured against. For every convolution pass it times:
//   blocked - oneDNN's own layouts end to end (every tensor already in the layout the primitive wants,
//             no reorders): what a network kept in blocked layouts between layers would see;
//   nchw    - the same pass for a caller holding NCHW tensors, as the engine does: the faster of
//             (a) the primitive on NCHW directly and (b) the blocked primitive plus the activation
//             reorders in and out. Weights are put in the primitive's layout once, outside the timing.
// Matmuls are row-major with the given transposes (one route, printed in both columns).
// Output: a human table, and one machine line per row: "row <id> <blocked_ms> <nchw_ms> <gflop>".
// Usage: onednn_bench [repeats]   (median over repeats after two warm-up runs; default 15)
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

int g_repeats = 15;

double median_ms(const std::function<void()>& run) {
    run();
    run();
    std::vector<double> t;
    for (int i = 0; i < g_repeats; i++) {
        auto start = std::chrono::steady_clock::now();
        run();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void fill(memory& m, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    auto* p = static_cast<float*>(m.get_data_handle());
    size_t n = m.get_desc().get_size() / sizeof(float);
    for (size_t i = 0; i < n; i++) p[i] = u(rng);
}

struct ConvShape {
    const char* id;
    const char* label;
    int64_t n, c, h, w, o, k, stride, pad;
};

enum class Pass { Fwd, BwdData, BwdWeights };
const char* pass_name(Pass p) { return p == Pass::Fwd ? "fwd" : p == Pass::BwdData ? "bwd_data" : "bwd_weights"; }

// One pass with activations in `act` (any = blocked) and weights in the primitive's layout; returns
// the median time, with activation reorders from/to NCHW included when `with_reorders`.
double time_conv(const ConvShape& s, Pass pass, tag act, bool with_reorders, dnnl::engine& eng, dnnl::stream& strm) {
    const int64_t oh = (s.h + 2 * s.pad - s.k) / s.stride + 1, ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
    memory::dims sd{s.n, s.c, s.h, s.w}, wd{s.o, s.c, s.k, s.k}, dd{s.n, s.o, oh, ow};
    memory::dims strides{s.stride, s.stride}, dil{0, 0}, pad{s.pad, s.pad};
    memory::desc src_md(sd, dt::f32, act), dst_md(dd, dt::f32, act), wei_md(wd, dt::f32, tag::any);
    memory::desc bias_md({s.o}, dt::f32, tag::x);
    const auto algo = dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::primitive_desc fwd_pd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, src_md, wei_md, dst_md, strides,
                                        dil, pad, pad),
        eng);
    memory user_src({sd, dt::f32, tag::nchw}, eng), user_dst({dd, dt::f32, tag::nchw}, eng);
    fill(user_src, 1);
    fill(user_dst, 2);

    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::vector<std::pair<memory, memory>> in_reorders, out_reorders;  // (from, to)
    auto activation = [&](int arg, const memory::desc& md, memory& user, bool is_output) {
        memory m = md == user.get_desc() ? user : memory(md, eng);
        if (!(md == user.get_desc())) {
            dnnl::reorder(user, m).execute(strm, user, m);  // inputs hold real data even without reorders
            if (is_output) out_reorders.emplace_back(m, user);
            else in_reorders.emplace_back(user, m);
        }
        args[arg] = m;
    };
    auto weights = [&](int arg, const memory::desc& md) {
        memory m(md, eng);
        fill(m, 3);
        args[arg] = m;
    };
    if (pass == Pass::Fwd) {
        prim = dnnl::convolution_forward(fwd_pd);
        activation(DNNL_ARG_SRC, fwd_pd.src_desc(), user_src, false);
        weights(DNNL_ARG_WEIGHTS, fwd_pd.weights_desc());
        activation(DNNL_ARG_DST, fwd_pd.dst_desc(), user_dst, true);
    } else if (pass == Pass::BwdData) {
        dnnl::convolution_backward_data::primitive_desc pd(
            dnnl::convolution_backward_data::desc(algo, src_md, wei_md, dst_md, strides, dil, pad, pad), eng, fwd_pd);
        prim = dnnl::convolution_backward_data(pd);
        activation(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), user_dst, false);
        weights(DNNL_ARG_WEIGHTS, pd.weights_desc());
        activation(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), user_src, true);
    } else {
        dnnl::convolution_backward_weights::primitive_desc pd(
            dnnl::convolution_backward_weights::desc(algo, src_md, wei_md, bias_md, dst_md, strides, dil, pad, pad),
            eng, fwd_pd);
        prim = dnnl::convolution_backward_weights(pd);
        activation(DNNL_ARG_SRC, pd.src_desc(), user_src, false);
        activation(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), user_dst, false);
        // The engine returns plain (C_out, C_in, kh, kw) weight gradients, so the NCHW route includes that reorder.
        memory user_dw({wd, dt::f32, tag::oihw}, eng);
        activation(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), user_dw, true);
        args[DNNL_ARG_DIFF_BIAS] = memory(pd.diff_bias_desc(), eng);
    }
    strm.wait();
    return median_ms([&] {
        if (with_reorders)
            for (auto& r : in_reorders) dnnl::reorder(r.first, r.second).execute(strm, r.first, r.second);
        prim.execute(strm, args);
        if (with_reorders)
            for (auto& r : out_reorders) dnnl::reorder(r.first, r.second).execute(strm, r.first, r.second);
        strm.wait();
    });
}

struct MatmulShape {
    const char* id;
    const char* label;
    int64_t m, n, k;
    bool trans_a, trans_b;
};

double time_matmul(const MatmulShape& s, dnnl::engine& eng, dnnl::stream& strm) {
    memory::desc a_md({s.m, s.k}, dt::f32, s.trans_a ? memory::dims{1, s.m} : memory::dims{s.k, 1});
    memory::desc b_md({s.k, s.n}, dt::f32, s.trans_b ? memory::dims{1, s.k} : memory::dims{s.n, 1});
    memory::desc c_md({s.m, s.n}, dt::f32, memory::dims{s.n, 1});
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), eng);
    dnnl::matmul prim(pd);
    memory a(a_md, eng), b(b_md, eng), c(c_md, eng);
    fill(a, 4);
    fill(b, 5);
    return median_ms([&] {
        prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
        strm.wait();
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) g_repeats = std::max(1, std::atoi(argv[1]));
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);

    const ConvShape convs[] = {
        {"r50.3x3.256@64x64", "conv 3x3 1x256x64x64 256->256 pad 1", 1, 256, 64, 64, 256, 3, 1, 1},
        {"r50.1x1.64-256@200x304", "conv 1x1 2x64x200x304 64->256", 2, 64, 200, 304, 256, 1, 1, 0},
        {"r50.1x1.2048-512@25x38", "conv 1x1 2x2048x25x38 2048->512", 2, 2048, 25, 38, 512, 1, 1, 0},
    };
    const MatmulShape matmuls[] = {
        {"fc.12544-1024.fwd", "matmul 1024x12544 @ (1024x12544)^T", 1024, 1024, 12544, false, true},
        {"fc.12544-1024.bwd_data", "matmul 1024x1024 @ 1024x12544", 1024, 12544, 1024, false, false},
        {"fc.12544-1024.bwd_weights", "matmul (1024x1024)^T @ 1024x12544", 1024, 12544, 1024, true, false},
    };

    std::printf("%-48s %12s %12s %12s %10s\n", "oneDNN 2.6 direct", "blocked ms", "nchw ms", "nchw GF/s", "route");
    for (const auto& s : convs)
        for (Pass p : {Pass::Fwd, Pass::BwdData, Pass::BwdWeights}) {
            const int64_t oh = (s.h + 2 * s.pad - s.k) / s.stride + 1, ow = (s.w + 2 * s.pad - s.k) / s.stride + 1;
            const double gflop = 2.0 * s.n * s.o * oh * ow * s.c * s.k * s.k / 1e9;
            const double blocked = time_conv(s, p, tag::any, false, eng, strm);
            const double blocked_io = time_conv(s, p, tag::any, true, eng, strm);
            const double plain = time_conv(s, p, tag::nchw, false, eng, strm);
            const double nchw = std::min(blocked_io, plain);
            std::string id = std::string(s.id) + "." + pass_name(p);
            std::string label = std::string(s.label) + " " + pass_name(p);
            std::printf("%-48s %12.2f %12.2f %12.1f %10s\n", label.c_str(), blocked, nchw, gflop / nchw * 1e3,
                        plain <= blocked_io ? "plain" : "blocked+io");
            std::printf("row %s %.4f %.4f %.6f\n", id.c_str(), blocked, nchw, gflop);
        }
    for (const auto& s : matmuls) {
        const double gflop = 2.0 * s.m * s.n * s.k / 1e9;
        const double t = time_matmul(s, eng, strm);
        std::printf("%-48s %12.2f %12.2f %12.1f %10s\n", s.label, t, t, gflop / t * 1e3, "row-major");
        std::printf("row %s %.4f %.4f %.6f\n", s.id, t, t, gflop);
    }
    return 0;
}
