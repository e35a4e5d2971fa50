// Flat C API of the engine's native CPU library. Every function returns an engine_status;
// on failure the thread-local message from engine_last_error() says what went wrong, and the
// C# side turns it into an exception naming the call.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENGINE_API __attribute__((visibility("default")))

typedef int32_t engine_status;
enum { ENGINE_OK = 0, ENGINE_ERROR = 1 };

ENGINE_API const char* engine_last_error(void);
ENGINE_API int32_t engine_native_abi_version(void);

#ifdef __cplusplus
}
#endif
