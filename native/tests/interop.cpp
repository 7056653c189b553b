// interop.cpp - runs golden vectors (HGV1 .case files, see tests/golden.py) through the C
// library from C++17, using only the public header: proves the header is C++-clean and that
// C/C++ host code gets the bytes the Python reference promised.
//
//   interop DIR        one line per case, then "N passed, N failed"; exit 1 on any failure
//
// Per case: fill a hailo_stream_info_t (hailo_fill_hw_frame_size for hw_data_bytes and
// hw_frame_size), create the input (direction 0) or output (1) context and check its status
// against expected_status (and against hailo_check_transform_params and the check of the
// case's direction; the check of the other direction must refuse it). If it was created,
// transform src into a destination of the context's frame size between guard bytes: the
// status must be expected_status; on success the bytes must equal the expected ones, and on
// any status the guards must be intact. The summary line counts the NMS cases that passed
// with several chunks per frame.
#include "hailo_stream.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct GoldenCase {
    std::string name;
    std::int64_t direction = -1;
    std::string stream_name;
    std::int64_t device_format[3] = {0, 0, 0};
    std::int64_t shape[3] = {0, 0, 0};
    std::int64_t hw_shape[3] = {0, 0, 0};
    hailo_quant_info_t quant_info{};
    std::vector<hailo_quant_info_t> quant_infos;
    std::int64_t quant_infos_count = -1;
    // classes, max_bboxes_per_class, max_bboxes_total, bbox_size, chunks_per_frame, and
    // optionally burst_size, burst_type
    std::int64_t nms[7] = {0, 0, 0, 0, 0, 0, 0};
    std::int64_t user_format[3] = {0, 0, 0};
    std::int64_t expected_status = -1;
    std::vector<unsigned char> src;
    std::vector<unsigned char> expected;
};

std::vector<std::string> split(const std::string &line)
{
    std::vector<std::string> out;
    std::string::size_type start = 0;
    while (true) {
        auto space = line.find(' ', start);
        out.push_back(line.substr(start, space - start));
        if (space == std::string::npos) break;
        start = space + 1;
    }
    return out;
}

bool parse_int(const std::string &s, std::int64_t &out)
{
    std::size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
    if (i == s.size() || s.size() - i > 18) return false; // 18 digits cannot overflow int64
    std::int64_t v = 0;
    for (; i < s.size(); i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = s[0] == '-' ? -v : v;
    return true;
}

// A float32 written as the 8 hex digits of its IEEE-754 bit pattern.
bool parse_f32(const std::string &s, float &out)
{
    if (s.size() != 8) return false;
    std::uint32_t bits = 0;
    for (char c : s) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return false;
        bits = bits << 4 | static_cast<std::uint32_t>(d);
    }
    std::memcpy(&out, &bits, sizeof out);
    return true;
}

bool parse_qp(const std::vector<std::string> &v, hailo_quant_info_t &q)
{
    return v.size() == 5 && parse_f32(v[1], q.qp_zp) && parse_f32(v[2], q.qp_scale) &&
           parse_f32(v[3], q.limvals_min) && parse_f32(v[4], q.limvals_max);
}

template <std::size_t N>
bool parse_ints(const std::vector<std::string> &v, std::int64_t (&out)[N])
{
    if (v.size() != N + 1) return false;
    for (std::size_t i = 0; i < N; i++)
        if (!parse_int(v[i + 1], out[i])) return false;
    return true;
}

// Parses one file; returns an error message, or nothing on success.
std::optional<std::string> parse(const std::vector<unsigned char> &blob, GoldenCase &c)
{
    std::size_t pos = 0;
    bool magic = false, data = false;
    std::int64_t src_size = -1, expected_size = -1;
    while (pos < blob.size()) {
        auto nl = std::find(blob.begin() + static_cast<std::ptrdiff_t>(pos), blob.end(), '\n');
        if (nl == blob.end()) return "no 'data' line";
        std::string line(blob.begin() + static_cast<std::ptrdiff_t>(pos), nl);
        pos = static_cast<std::size_t>(nl - blob.begin()) + 1;
        if (!magic) {
            if (line != "HGV1") return "not an HGV1 file";
            magic = true;
            continue;
        }
        if (line == "data") {
            data = true;
            break;
        }
        auto v = split(line);
        const std::string &key = v[0];
        bool ok = true;
        if (key == "name") ok = v.size() == 2 && !(c.name = v[1]).empty();
        else if (key == "direction") ok = v.size() == 2 && parse_int(v[1], c.direction);
        else if (key == "stream_name") ok = v.size() == 2 && ((c.stream_name = v[1]), true);
        else if (key == "device_format") ok = parse_ints(v, c.device_format);
        else if (key == "shape") ok = parse_ints(v, c.shape);
        else if (key == "hw_shape") ok = parse_ints(v, c.hw_shape);
        else if (key == "quant_info") ok = parse_qp(v, c.quant_info);
        else if (key == "quant_infos") ok = v.size() == 2 && parse_int(v[1], c.quant_infos_count) && c.quant_infos_count >= 0;
        else if (key == "qp") {
            hailo_quant_info_t q{};
            ok = parse_qp(v, q);
            c.quant_infos.push_back(q);
        } else if (key == "nms_info") {
            std::int64_t five[5];
            if (v.size() == 6 && parse_ints(v, five)) std::copy(five, five + 5, c.nms);
            else ok = parse_ints(v, c.nms);
        }
        else if (key == "user_format") ok = parse_ints(v, c.user_format);
        else if (key == "expected_status") ok = v.size() == 2 && parse_int(v[1], c.expected_status);
        else if (key == "src_size") ok = v.size() == 2 && parse_int(v[1], src_size) && src_size >= 0;
        else if (key == "expected_size") ok = v.size() == 2 && parse_int(v[1], expected_size) && expected_size >= 0;
        else return "unknown key '" + key + "'";
        if (!ok) return "bad line '" + line + "'";
    }
    if (!data) return "no 'data' line";
    if (c.name.empty() || c.direction < 0 || c.expected_status < 0 || src_size < 0 || expected_size < 0 ||
        c.quant_infos_count < 0)
        return "missing header lines";
    if (static_cast<std::int64_t>(c.quant_infos.size()) != c.quant_infos_count)
        return "quant_infos count does not match the qp lines";
    if (blob.size() - pos != static_cast<std::size_t>(src_size + expected_size))
        return "data size is not src_size + expected_size";
    c.src.assign(blob.begin() + static_cast<std::ptrdiff_t>(pos), blob.begin() + static_cast<std::ptrdiff_t>(pos + static_cast<std::size_t>(src_size)));
    c.expected.assign(blob.begin() + static_cast<std::ptrdiff_t>(pos + static_cast<std::size_t>(src_size)), blob.end());
    return std::nullopt;
}

template <typename T>
T as_enum(std::int64_t v)
{
    return static_cast<T>(static_cast<std::uint32_t>(v));
}

std::uint32_t as_u32(std::int64_t v) { return static_cast<std::uint32_t>(v); }

// Runs one case; returns an error message, or nothing when it passed.
std::optional<std::string> run(const GoldenCase &c)
{
    hailo_stream_info_t si{};
    std::size_t n = std::min(c.stream_name.size(), static_cast<std::size_t>(HAILO_MAX_STREAM_NAME_SIZE - 1));
    std::memcpy(si.name, c.stream_name.data(), n);
    si.direction = as_enum<hailo_stream_direction_t>(c.direction);
    si.format = {as_enum<hailo_format_type_t>(c.device_format[0]), as_enum<hailo_format_order_t>(c.device_format[1]),
                 as_enum<hailo_format_flags_t>(c.device_format[2])};
    si.shape = {as_u32(c.shape[0]), as_u32(c.shape[1]), as_u32(c.shape[2])};
    si.hw_shape = {as_u32(c.hw_shape[0]), as_u32(c.hw_shape[1]), as_u32(c.hw_shape[2])};
    si.quant_info = c.quant_info;
    si.quant_infos = c.quant_infos.empty() ? nullptr : c.quant_infos.data();
    si.quant_infos_count = static_cast<std::uint32_t>(c.quant_infos.size());
    si.nms_info.number_of_classes = as_u32(c.nms[0]);
    si.nms_info.max_bboxes_per_class = as_u32(c.nms[1]);
    si.nms_info.max_bboxes_total = as_u32(c.nms[2]);
    si.nms_info.bbox_size = as_u32(c.nms[3]);
    si.nms_info.chunks_per_frame = as_u32(c.nms[4]);
    si.nms_info.burst_size = as_u32(c.nms[5]);
    si.nms_info.burst_type = as_enum<hailo_nms_burst_type_t>(c.nms[6]);
    (void)hailo_fill_hw_frame_size(&si); // may fail on purpose: creation reports why

    hailo_transform_params_t params = HAILO_DEFAULT_TRANSFORM_PARAMS;
    params.user_buffer_format = {as_enum<hailo_format_type_t>(c.user_format[0]), as_enum<hailo_format_order_t>(c.user_format[1]),
                                 as_enum<hailo_format_flags_t>(c.user_format[2])};

    char msg[HAILO_MAX_MESSAGE_SIZE];
    hailo_status check = hailo_check_transform_params(&si, &params, msg, sizeof msg);
    bool input = c.direction == 0;
    hailo_status directed = input ? hailo_check_input_transform_params(&si, &params, nullptr, 0)
                                  : hailo_check_output_transform_params(&si, &params, nullptr, 0);
    hailo_status other = input ? hailo_check_output_transform_params(&si, &params, nullptr, 0)
                               : hailo_check_input_transform_params(&si, &params, nullptr, 0);

    hailo_input_transform_context in = nullptr;
    hailo_output_transform_context out = nullptr;
    hailo_status st = input ? hailo_create_input_transform_context(&si, &params, &in)
                            : hailo_create_output_transform_context(&si, &params, &out);
    std::ostringstream why;
    if (st != check || st != directed) {
        why << "create gave " << st << " but check gave " << check << " (" << msg << ") and the "
            << (input ? "input" : "output") << " check " << directed;
        return why.str();
    }
    if (other != HAILO_INVALID_ARGUMENT) {
        why << "the check of the other direction gave " << other;
        return why.str();
    }
    if (st != HAILO_SUCCESS && (in != nullptr || out != nullptr)) return std::string("a failed create left *context set");
    if (st != HAILO_SUCCESS) {
        if (st == c.expected_status) return std::nullopt;
        why << "create gave " << st << " (" << msg << "), expected " << c.expected_status;
        return why.str();
    }

    std::size_t dst_size = input ? hailo_input_transform_context_get_dst_frame_size(in)
                                 : hailo_output_transform_context_get_dst_frame_size(out);
    const std::size_t guard = 64;
    std::vector<unsigned char> dst(dst_size + 2 * guard, 0xA5);
    unsigned char dummy = 0;
    const void *src = c.src.empty() ? static_cast<const void *>(&dummy) : c.src.data();
    hailo_status ts = input ? hailo_transform_frame_by_input_transform_context(in, src, c.src.size(), dst.data() + guard, dst_size)
                            : hailo_transform_frame_by_output_transform_context(out, src, c.src.size(), dst.data() + guard, dst_size);
    if (input) hailo_release_input_transform_context(in);
    else hailo_release_output_transform_context(out);

    for (std::size_t i = 0; i < guard; i++)
        if (dst[i] != 0xA5 || dst[guard + dst_size + i] != 0xA5) return std::string("wrote outside the destination");
    if (ts != c.expected_status) {
        why << "transform gave " << ts << " (" << hailo_get_status_message(ts) << "), expected " << c.expected_status;
        return why.str();
    }
    if (ts != HAILO_SUCCESS) {
        // a refused frame leaves the destination alone
        for (std::size_t i = 0; i < dst_size; i++)
            if (dst[guard + i] != 0xA5) return std::string("a failed transform wrote to the destination");
        return std::nullopt;
    }
    if (c.expected.size() != dst_size) {
        why << "expected_size " << c.expected.size() << " but the context's frame is " << dst_size << " bytes";
        return why.str();
    }
    for (std::size_t i = 0; i < dst_size; i++) {
        if (dst[guard + i] != c.expected[i]) {
            why << "byte " << i << " of " << dst_size << ": got 0x" << std::hex << static_cast<int>(dst[guard + i])
                << ", expected 0x" << static_cast<int>(c.expected[i]);
            return why.str();
        }
    }
    return std::nullopt;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
        return 2;
    }
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto &e : std::filesystem::directory_iterator(argv[1], ec))
        if (e.is_regular_file() && e.path().extension() == ".case") files.push_back(e.path());
    if (ec) {
        std::fprintf(stderr, "interop: cannot read %s: %s\n", argv[1], ec.message().c_str());
        return 2;
    }
    std::sort(files.begin(), files.end());
    int passed = 0, failed = 0, nms_chunks = 0;
    for (const auto &path : files) {
        std::ifstream f(path, std::ios::binary);
        std::vector<unsigned char> blob((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        GoldenCase c;
        auto err = parse(blob, c);
        std::string name = c.name.empty() ? path.filename().string() : c.name;
        if (!err) err = run(c);
        if (err) {
            failed++;
            std::printf("FAIL %s: %s\n", name.c_str(), err->c_str());
        } else {
            passed++;
            if (c.device_format[1] == HAILO_FORMAT_ORDER_HAILO_NMS_ON_CHIP && c.nms[4] > 1 && c.expected_status == 0) nms_chunks++;
            std::printf("PASS %s\n", name.c_str());
        }
    }
    std::printf("%d NMS cases with several chunks passed\n", nms_chunks);
    if (files.empty()) std::fprintf(stderr, "interop: no .case files in %s\n", argv[1]);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && !files.empty() ? 0 : 1;
}
