// Error plumbing and version of the native library.
#include "engine_native.h"
#include "status.h"

namespace engine {
thread_local std::string g_last_error;
}

extern "C" const char* engine_last_error(void) { return engine::g_last_error.c_str(); }
extern "C" int32_t engine_native_abi_version(void) { return 1; }
