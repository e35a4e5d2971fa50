// Turns C++ exceptions into an engine_status plus a thread-local message (the TorchSharp
// CATCH pattern): no exception ever crosses the C ABI.
#pragma once
#include <string>
#include <stdexcept>
#include "engine_native.h"

namespace engine {
extern thread_local std::string g_last_error;
}

#define ENGINE_TRY try {
#define ENGINE_CATCH(call)                                                        \
    return ENGINE_OK;                                                             \
    } catch (const std::exception& e) {                                           \
        engine::g_last_error = std::string(call) + ": " + e.what();               \
        return ENGINE_ERROR;                                                      \
    } catch (...) {                                                               \
        engine::g_last_error = std::string(call) + ": unknown native exception";  \
        return ENGINE_ERROR;                                                      \
    }
