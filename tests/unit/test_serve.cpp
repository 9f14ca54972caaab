// The HTTP API's request parsing, error bodies and metrics, without a server.
#include <nlohmann/json.hpp>

#include "../test_helpers.h"
#include "ulmfit/serve/metrics.h"
#include "ulmfit/serve/requests.h"
#include "ulmfit/serve/server.h"
#include "ulmfit/util/error.h"

namespace ulmfit::serve {
namespace {

using ::testing::HasSubstr;

/// The status and field a body is rejected with, or {0, ""} when it parses.
template <class Parse>
std::pair<int, std::string> rejection(Parse parse, const std::string& body, const Limits& limits) {
  try {
    parse(body, limits);
    return {0, ""};
  } catch (const RequestError& e) {
    return {e.status(), e.field()};
  }
}

std::pair<int, std::string> classify_rejection(const std::string& body, const Limits& limits = {}) {
  return rejection(parse_classify_request, body, limits);
}

std::pair<int, std::string> generate_rejection(const std::string& body, const Limits& limits = {}) {
  return rejection(parse_generate_request, body, limits);
}

TEST(ServeRequests, ClassifyBodiesParse) {
  const auto r = parse_classify_request(R"({"texts": ["a fine film", "dull"], "model": "imdb"})", {});
  EXPECT_EQ(r.model, "imdb");
  EXPECT_EQ(r.texts, (std::vector<std::string>{"a fine film", "dull"}));
  EXPECT_EQ(parse_classify_request(R"({"texts": ["x"]})", {}).model, "");
}

TEST(ServeRequests, ClassifyRejectionsNameTheField) {
  using R = std::pair<int, std::string>;
  EXPECT_EQ(classify_rejection("{\"texts\": [\"a\""), R(400, ""));  // truncated JSON
  EXPECT_EQ(classify_rejection("[1, 2]"), R(400, ""));
  EXPECT_EQ(classify_rejection(R"({"texts": ["a"], "model": 1.5e400})"), R(400, ""));  // overflows a double
  EXPECT_EQ(classify_rejection("{}"), R(400, "texts"));
  EXPECT_EQ(classify_rejection(R"({"texts": "one"})"), R(400, "texts"));
  EXPECT_EQ(classify_rejection(R"({"texts": []})"), R(400, "texts"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["ok", 3]})"), R(400, "texts[1]"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["ok", " \n "]})"), R(400, "texts[1]"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["ok"], "model": 7})"), R(400, "model"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["ok"], "txt": 1})"), R(400, "txt"));
  EXPECT_EQ(classify_rejection(R"({"texts": [["deep", ["deeper"]]]})"), R(400, ""));
  Limits small;
  small.max_texts = 2;
  small.max_text_bytes = 5;
  EXPECT_EQ(classify_rejection(R"({"texts": ["a", "b", "c"]})", small), R(413, "texts"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["a", "123456"]})", small), R(413, "texts[1]"));
  EXPECT_EQ(classify_rejection(R"({"texts": ["a", "12345"]})", small), R(0, ""));
}

TEST(ServeRequests, GenerateBodiesParseWithDefaultsAndLimits) {
  const auto r = parse_generate_request(R"({"prompt": "the film", "max_tokens": 7, "top_p": 0.9, "seed": 3})", {});
  EXPECT_EQ(r.options.prompt, "the film");
  EXPECT_EQ(r.options.max_tokens, 7);
  EXPECT_DOUBLE_EQ(r.options.top_p, 0.9);
  EXPECT_EQ(r.options.seed, 3);
  EXPECT_DOUBLE_EQ(r.options.temperature, 1.0);
  Limits low;
  low.max_generated_tokens = 16;
  EXPECT_EQ(parse_generate_request(R"({"prompt": "a"})", low).options.max_tokens, 16);  // the default, capped by the limit
  using R = std::pair<int, std::string>;
  EXPECT_EQ(generate_rejection("{}"), R(400, "prompt"));
  EXPECT_EQ(generate_rejection(R"({"prompt": 1})"), R(400, "prompt"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "max_tokens": 1.5})"), R(400, "max_tokens"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "max_tokens": -1})"), R(400, "max_tokens"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "max_tokens": 513})"), R(413, "max_tokens"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "max_tokens": 18446744073709551615})"), R(413, "max_tokens"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "temperature": 0})"), R(400, "temperature"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "top_p": 1.5})"), R(400, "top_p"));
  EXPECT_EQ(generate_rejection(R"({"prompt": "a", "top_k": "5"})"), R(400, "top_k"));
}

TEST(ServeRequests, ErrorBodiesAreJsonEvenForInvalidUtf8) {
  const auto body = nlohmann::json::parse(error_body(400, "texts[0]", "bad \xff byte"));
  EXPECT_EQ(body["error"]["status"], 400);
  EXPECT_EQ(body["error"]["field"], "texts[0]");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("bad "));
  EXPECT_FALSE(nlohmann::json::parse(error_body(404, "", "x"))["error"].contains("field"));
}

TEST(ServeRequests, ModelArgumentsAreNamedByFolderOrExplicitly) {
  EXPECT_EQ(parse_model_argument("runs/imdb-clf"), std::make_pair(std::string("imdb-clf"), std::string("runs/imdb-clf")));
  EXPECT_EQ(parse_model_argument("runs/imdb-clf/"), std::make_pair(std::string("imdb-clf"), std::string("runs/imdb-clf/")));
  EXPECT_EQ(parse_model_argument("sent=runs/a"), std::make_pair(std::string("sent"), std::string("runs/a")));
  EXPECT_THROW(parse_model_argument("bad name=runs/a"), UsageError);
  EXPECT_THROW(parse_model_argument("a\"b=runs/a"), UsageError);
  EXPECT_THROW(parse_model_argument("name="), UsageError);
}

TEST(ServeMetrics, PrometheusTextCountsRequestsBatchesAndRate) {
  Metrics m;
  m.record_status("/v1/classify", 200);
  m.record_status("/v1/classify", 200);
  m.record_status("/v1/classify", 413);
  m.record_latency("/v1/classify", 0.003);
  m.record_latency("/v1/classify", 0.2);
  m.record_batch(3);
  m.record_batch(40);
  m.set_queue_depth("imdb", 5);
  const auto text = m.render(Metrics::Clock::now() + std::chrono::seconds(2));
  EXPECT_THAT(text, HasSubstr("ulmfit_requests_total{endpoint=\"/v1/classify\",status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_requests_total{endpoint=\"/v1/classify\",status=\"413\"} 1\n"));
  // Buckets are cumulative: 3 ms is under 5 ms, 200 ms under 250 ms.
  EXPECT_THAT(text, HasSubstr("ulmfit_request_duration_seconds_bucket{endpoint=\"/v1/classify\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_request_duration_seconds_bucket{endpoint=\"/v1/classify\",le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_request_duration_seconds_bucket{endpoint=\"/v1/classify\",le=\"0.25\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_request_duration_seconds_count{endpoint=\"/v1/classify\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_batch_documents_bucket{le=\"4\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_batch_documents_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_documents_total 43\n"));
  EXPECT_THAT(text, HasSubstr("ulmfit_documents_per_second 4.3\n"));  // 43 documents over the 10 s window
  EXPECT_THAT(text, HasSubstr("ulmfit_queue_documents{model=\"imdb\"} 5\n"));
  // Documents older than the window no longer count towards the rate.
  EXPECT_THAT(m.render(Metrics::Clock::now() + std::chrono::seconds(30)), HasSubstr("ulmfit_documents_per_second 0\n"));
}

}  // namespace
}  // namespace ulmfit::serve
