/* status.c - status strings, the library version, message helpers. */
#include "hs_internal.h"

#include <stdio.h>

const char *hailo_get_status_message(hailo_status status)
{
    switch (status) {
    case HAILO_SUCCESS: return "HAILO_SUCCESS: success";
    case HAILO_UNINITIALIZED: return "HAILO_UNINITIALIZED: not initialized";
    case HAILO_INVALID_ARGUMENT:
        return "HAILO_INVALID_ARGUMENT: invalid argument (NULL pointer, unknown enum value, "
               "inconsistent shape or quantization)";
    case HAILO_OUT_OF_HOST_MEMORY: return "HAILO_OUT_OF_HOST_MEMORY: host memory allocation failed";
    case HAILO_TIMEOUT: return "HAILO_TIMEOUT: timed out";
    case HAILO_INSUFFICIENT_BUFFER:
        return "HAILO_INSUFFICIENT_BUFFER: buffer size is not the frame size";
    case HAILO_INVALID_OPERATION:
        return "HAILO_INVALID_OPERATION: unsupported type/order combination";
    case HAILO_NOT_IMPLEMENTED: return "HAILO_NOT_IMPLEMENTED: not implemented";
    case HAILO_INTERNAL_FAILURE: return "HAILO_INTERNAL_FAILURE: internal failure";
    case HAILO_DATA_ALIGNMENT_FAILURE: return "HAILO_DATA_ALIGNMENT_FAILURE: misaligned data";
    case HAILO_INVALID_FRAME: return "HAILO_INVALID_FRAME: malformed device frame";
    case HAILO_NOT_FOUND: return "HAILO_NOT_FOUND: not found";
    case HAILO_COMMUNICATION_CLOSED: return "HAILO_COMMUNICATION_CLOSED: communication closed";
    case HAILO_RPC_FAILED: return "HAILO_RPC_FAILED: remote procedure call failed";
    case HAILO_INVALID_SERVICE_VERSION:
        return "HAILO_INVALID_SERVICE_VERSION: protocol version not supported by the peer";
    case HAILO_NOT_SUPPORTED: return "HAILO_NOT_SUPPORTED: not supported";
    case HAILO_QUEUE_IS_FULL: return "HAILO_QUEUE_IS_FULL: queue is full, retry later";
    case HAILO_STATUS_MAX_ENUM: break;
    }
    return "HAILO_UNKNOWN_STATUS";
}

hailo_status hailo_get_library_version(hailo_version_t *version)
{
    if (version == NULL) return HAILO_INVALID_ARGUMENT;
    version->major = HAILO_STREAM_LAYER_VERSION_MAJOR;
    version->minor = HAILO_STREAM_LAYER_VERSION_MINOR;
    version->revision = HAILO_STREAM_LAYER_VERSION_REVISION;
    return HAILO_SUCCESS;
}

hailo_status hs_msg(hailo_status status, char *msg, size_t msg_size, const char *fmt, ...)
{
    if (msg != NULL && msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

void hs_msg_append(char *msg, size_t msg_size, const char *fmt, ...)
{
    if (msg == NULL || msg_size == 0) return;
    size_t used = hs_strnlen(msg, msg_size);
    if (used + 1 >= msg_size) return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg + used, msg_size - used, fmt, ap);
    va_end(ap);
}
