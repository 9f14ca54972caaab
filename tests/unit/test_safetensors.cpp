// safetensors: round trips, dtypes, shards, and bad files that name the file
// and the tensor instead of crashing or loading garbage.
#include <nlohmann/json.hpp>

#include "../test_helpers.h"
#include "ulmfit/io/safetensors.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::write_file;

/// A safetensors file from a header and raw data bytes, written by hand.
std::string hand_made(const nlohmann::json& header, const std::string& data) {
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  return out + text + data;
}

std::string bytes_of(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel() * c.element_size()));
}

void expect_checkpoint_error(const std::string& path, const std::string& needle) {
  try {
    io::read_safetensors(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const CheckpointError& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr(path), HasSubstr(needle)));
  }
}

TEST(Safetensors, WriteThenReadGivesTheSameTensors) {
  testing::TempDir dir;
  io::TensorMap tensors{{"b.weight", torch::randn({3, 5})}, {"a.bias", torch::randn({7})},
                        {"ids", torch::arange(6, torch::kInt64).view({2, 3})}, {"scalar", torch::tensor(2.5f)}};
  const auto path = (dir / "w.safetensors").string();
  io::write_safetensors(path, tensors, {{"format", "pt"}});
  const auto bytes = util::read_file(path);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ((8 + header) % 8, 0u) << "data should start 8-byte aligned";
  EXPECT_EQ(nlohmann::json::parse(bytes.substr(8, header))["__metadata__"]["format"], "pt");
  const auto back = io::read_safetensors(path);
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_TRUE(torch::equal(back.at(name), t)) << name;
  }
}

TEST(Safetensors, HalfAndBfloat16AreReadAsFloat32) {
  testing::TempDir dir;
  const auto f16 = torch::randn({4, 3}).to(torch::kHalf);
  const auto b16 = torch::randn({5}).to(torch::kBFloat16);
  const std::string data = bytes_of(f16) + bytes_of(b16);
  const nlohmann::json header = {
      {"h", {{"dtype", "F16"}, {"shape", {4, 3}}, {"data_offsets", {0, 24}}}},
      {"b", {{"dtype", "BF16"}, {"shape", {5}}, {"data_offsets", {24, 34}}}}};
  const auto path = write_file(dir / "m.safetensors", hand_made(header, data)).string();
  const auto t = io::read_safetensors(path);
  EXPECT_EQ(t.at("h").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t.at("h"), f16.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(t.at("b"), b16.to(torch::kFloat32)));
}

TEST(Safetensors, BadFilesNameTheFileAndTheTensor) {
  testing::TempDir dir;
  const auto good_data = bytes_of(torch::randn({2, 3}));
  auto entry = [](const std::string& dtype, std::vector<int64_t> shape, int64_t begin, int64_t end) {
    return nlohmann::json{{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
  };
  const auto good = hand_made({{"w", entry("F32", {2, 3}, 0, 24)}}, good_data);

  expect_checkpoint_error(write_file(dir / "short.safetensors", good.substr(0, 5)).string(), "truncated");
  expect_checkpoint_error(write_file(dir / "cut.safetensors", good.substr(0, good.size() - 4)).string(), "tensor w");
  expect_checkpoint_error(write_file(dir / "long_header.safetensors", std::string("\xff\xff\0\0\0\0\0\0", 8) + "{}").string(),
                          "exceeds the file");
  expect_checkpoint_error(
      write_file(dir / "lie.safetensors", hand_made({{"w", entry("F32", {2, 3}, 0, 240)}}, good_data)).string(),
      "tensor w");
  expect_checkpoint_error(
      write_file(dir / "shape.safetensors", hand_made({{"w", entry("F32", {3, 3}, 0, 24)}}, good_data)).string(),
      "tensor w: header gives 24 bytes");
  expect_checkpoint_error(
      write_file(dir / "dtype.safetensors", hand_made({{"w", entry("C64", {2, 3}, 0, 24)}}, good_data)).string(),
      "dtype C64");
  expect_checkpoint_error(
      write_file(dir / "overlap.safetensors",
                 hand_made({{"w", entry("F32", {3}, 0, 12)}, {"v", entry("F32", {3}, 8, 20)}}, good_data))
          .string(),
      "share bytes");
  expect_checkpoint_error(write_file(dir / "json.safetensors", hand_made(nlohmann::json::array(), "")).string(),
                          "not a JSON object");
  std::string garbage(8, '\0');
  garbage[0] = 4;
  expect_checkpoint_error(write_file(dir / "garbage.safetensors", garbage + "{{{{").string(), "not valid JSON");
}

TEST(Safetensors, ShardedCheckpointIsReadThroughItsIndex) {
  testing::TempDir dir;
  const auto a = torch::randn({4}), b = torch::randn({2, 2});
  io::write_safetensors((dir / "model-00001-of-00002.safetensors").string(), {{"a", a}});
  io::write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {{"b", b}});
  write_file(dir / "model.safetensors.index.json",
             R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  const auto all = io::read_checkpoint_dir(dir.path().string());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(torch::equal(all.at("a"), a));
  EXPECT_TRUE(torch::equal(all.at("b"), b));

  write_file(dir / "model.safetensors.index.json",
             R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})");
  try {
    io::read_checkpoint_dir(dir.path().string());
    ADD_FAILURE() << "a tensor listed but absent should fail";
  } catch (const CheckpointError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("tensor c"));
  }
}

}  // namespace
}  // namespace ulmfit
