// `ulmfit serve` as users run it: the real binary on a loopback port, a real
// HTTP client, tiny runs trained by the tests themselves.
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sstream>
#include <thread>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
namespace fs = std::filesystem;

/// A tiny classifier and language model, trained once for the suite.
class CliServe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    ::setenv("ULMFIT_TINY_DATA", dir_->path().c_str(), 1);
    testing::write_tiny_corpora(dir_->path());
    const std::string configs = std::string(ULMFIT_SOURCE_DIR) + "/configs/";
    const auto lm = cli_run("pretrain --config " + configs + "tiny-lm.yaml --out " + (dir_->path() / "lm").string(), dir_->path());
    ASSERT_EQ(lm.code, 0) << lm.err;
    const auto clf = cli_run("finetune --config " + configs + "tiny-classifier.yaml --from " + (dir_->path() / "lm").string() +
                                 " --out " + (dir_->path() / "clf").string(),
                             dir_->path());
    ASSERT_EQ(clf.code, 0) << clf.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  /// Starts `ulmfit serve` with the tiny runs and `extra` flags; waits until it prints its address.
  void start(const std::string& extra = "") {
    out_ = dir_->path() / ("serve-" + std::to_string(++starts_));
    fs::create_directories(out_);
    pid_ = cli_spawn("serve --model " + run("clf") + " --model lm=" + run("lm") +
                         " --port 0 --threads 1 --precision fp32 " + extra,
                     out_);
    const auto printed = [&] {
      return fs::exists(out_ / "stdout.txt") && util::read_file(out_ / "stdout.txt").find('\n') != std::string::npos;
    };
    ASSERT_TRUE(wait_until(printed, 60))
        << util::read_file(out_ / "stderr.txt");
    const auto address = util::read_file(out_ / "stdout.txt");
    const auto colon = address.rfind(':');
    port_ = std::stoi(address.substr(colon + 1));
    ASSERT_EQ(address.substr(0, colon), "http://127.0.0.1");
  }
  Ended stop() {
    ::kill(pid_, SIGTERM);
    const auto ended = cli_wait(pid_, out_);
    pid_ = -1;
    return ended;
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      cli_wait(pid_, out_);
    }
  }
  static std::string run(const std::string& name) { return (dir_->path() / name).string(); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body) {
    return client().Post(path.c_str(), body, "application/json");
  }
  /// The error object of a JSON error answer with `status`.
  static json error_of(const httplib::Result& r, int status) {
    EXPECT_TRUE(r);
    if (!r) return json::object();
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    return json::parse(r->body)["error"];
  }

  static testing::TempDir* dir_;
  static int starts_;
  fs::path out_;
  pid_t pid_ = -1;
  int port_ = 0;
};
testing::TempDir* CliServe::dir_ = nullptr;
int CliServe::starts_ = 0;

TEST_F(CliServe, EveryEndpointAnswersAndClassifyEqualsPredict) {
  start();
  auto health = client().Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  const auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  const auto list = json::parse(models->body)["models"];
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "clf");
  EXPECT_EQ(list[0]["default"], true);
  EXPECT_EQ(list[0]["task"], "classifier");
  EXPECT_EQ(list[0]["labels"], json({"neg", "pos"}));
  EXPECT_EQ(list[0]["backbone"], "awd_lstm");
  EXPECT_EQ(list[1]["name"], "lm");
  EXPECT_EQ(list[1]["can_generate"], true);
  EXPECT_GT(list[1]["vocab_size"].get<int>(), 0);

  // The same texts through predict and through the server: the same answers.
  std::vector<std::string> texts;
  std::string lines;
  for (const auto& d : testing::tiny_documents(30, 11)) {
    texts.push_back(d);
    lines += d + "\n";
  }
  testing::write_file(out_ / "texts.txt", lines);
  const auto predicted = cli_run("predict --precision fp32 --threads 1 --model " + run("clf") + " --input " +
                                     (out_ / "texts.txt").string(),
                                 out_);
  ASSERT_EQ(predicted.code, 0) << predicted.err;
  const auto served = post("/v1/classify", json{{"texts", texts}}.dump());
  ASSERT_TRUE(served);
  ASSERT_EQ(served->status, 200) << served->body;
  const auto results = json::parse(served->body)["results"];
  ASSERT_EQ(results.size(), texts.size());
  std::istringstream expected(predicted.out);
  std::set<std::string> labels_seen;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::string line;
    ASSERT_TRUE(std::getline(expected, line));
    const auto want = json::parse(line);
    EXPECT_EQ(results[i]["label"], want["label"]) << i;
    for (const char* label : {"neg", "pos"}) {
      EXPECT_NEAR(results[i]["probabilities"][label].get<double>(), want["probabilities"][label].get<double>(), 1e-6);
    }
    labels_seen.insert(results[i]["label"].get<std::string>());
  }
  // Requests sent one text at a time, concurrently, are batched and answered in kind.
  std::vector<std::thread> senders;
  std::vector<std::string> answers(8);
  for (int i = 0; i < 8; ++i) {
    senders.emplace_back([&, i] {
      const auto r = post("/v1/classify", json{{"texts", {texts[static_cast<std::size_t>(i)]}}}.dump());
      answers[static_cast<std::size_t>(i)] = r ? r->body : "";
    });
  }
  for (auto& t : senders) t.join();
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto r = json::parse(answers[i])["results"][0];
    EXPECT_NEAR(r["probabilities"]["pos"].get<double>(), results[i]["probabilities"]["pos"].get<double>(), 1e-5);
  }

  // generate: the same text as `ulmfit generate` with the same seed.
  const auto generated = post("/v1/generate", R"({"model": "lm", "prompt": "the film", "max_tokens": 12, "seed": 3})");
  ASSERT_TRUE(generated);
  ASSERT_EQ(generated->status, 200) << generated->body;
  const auto cli_generated = cli_run("generate --precision fp32 --threads 1 --model " + run("lm") +
                                         " --prompt 'the film' --max-tokens 12 --seed 3",
                                     out_);
  ASSERT_EQ(cli_generated.code, 0) << cli_generated.err;
  EXPECT_EQ(json::parse(generated->body)["text"].get<std::string>() + "\n", cli_generated.out);

  const auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("ulmfit_requests_total{endpoint=\"/v1/classify\",status=\"200\"} 9\n"));
  EXPECT_THAT(metrics->body, HasSubstr("ulmfit_requests_total{endpoint=\"/v1/generate\",status=\"200\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("ulmfit_documents_total 38\n"));
  EXPECT_THAT(metrics->body, HasSubstr("ulmfit_request_duration_seconds_count{endpoint=\"/v1/classify\"} 9\n"));
  EXPECT_THAT(metrics->body, HasSubstr("ulmfit_queue_documents{model=\"clf\"} 0\n"));
  const auto ended = stop();
  EXPECT_EQ(ended.code, 0) << ended.err;
}

TEST_F(CliServe, BadRequestsGetAStatusAndAMessageNamingTheField) {
  start("--max-texts 3 --max-text-bytes 64 --max-body-bytes 4096 --max-generated-tokens 20 --max-queue 4");
  EXPECT_THAT(error_of(post("/v1/classify", "{\"texts\": [\"a\""), 400)["message"].get<std::string>(),
              HasSubstr("malformed JSON"));
  EXPECT_EQ(error_of(post("/v1/classify", R"({"texts": ["fine", 3]})"), 400)["field"], "texts[1]");
  EXPECT_EQ(error_of(post("/v1/classify", R"({"texts": [""]})"), 400)["field"], "texts[0]");
  EXPECT_EQ(error_of(post("/v1/classify", R"({"texts": "fine"})"), 400)["field"], "texts");
  const auto unknown = error_of(post("/v1/classify", R"({"model": "nope", "texts": ["fine"]})"), 400);
  EXPECT_EQ(unknown["field"], "model");
  EXPECT_THAT(unknown["message"].get<std::string>(), HasSubstr("no model named 'nope'"));
  EXPECT_THAT(error_of(post("/v1/classify", R"({"model": "lm", "texts": ["fine"]})"), 400)["message"].get<std::string>(),
              HasSubstr("is a language model"));
  EXPECT_EQ(error_of(post("/v1/generate", R"({"prompt": "the"})"), 400)["field"], "model");  // the default is a classifier
  EXPECT_EQ(error_of(post("/v1/classify", R"({"texts": ["a", "b", "c", "d"]})"), 413)["field"], "texts");
  EXPECT_EQ(error_of(post("/v1/classify", json{{"texts", {std::string(65, 'a')}}}.dump()), 413)["field"], "texts[0]");
  EXPECT_EQ(error_of(post("/v1/generate", R"({"model": "lm", "prompt": "the", "max_tokens": 21})"), 413)["field"],
            "max_tokens");
  EXPECT_THAT(error_of(post("/v1/classify", json{{"texts", {std::string(5000, 'a')}}}.dump()), 413)["message"]
                  .get<std::string>(),
              HasSubstr("over the limit of 4096 bytes"));
  EXPECT_THAT(error_of(client().Get("/v1/nothing"), 404)["message"].get<std::string>(), HasSubstr("no such endpoint"));
  // Over the queue limit: 503 with Retry-After, and the server still answers after.
  std::vector<std::thread> senders;
  std::vector<int> statuses(12, 0);
  std::vector<std::string> retry_after(12);
  for (int i = 0; i < 12; ++i) {
    senders.emplace_back([&, i] {
      const auto r = post("/v1/classify", R"({"texts": ["the film was great", "boring", "fun"]})");
      if (!r) return;
      statuses[static_cast<std::size_t>(i)] = r->status;
      retry_after[static_cast<std::size_t>(i)] = r->get_header_value("Retry-After");
    });
  }
  for (auto& t : senders) t.join();
  int ok = 0, overloaded = 0;
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    ok += statuses[i] == 200;
    if (statuses[i] == 503) {
      ++overloaded;
      EXPECT_EQ(retry_after[i], "1");
    }
  }
  EXPECT_EQ(ok + overloaded, 12);
  EXPECT_GE(ok, 1);
  const auto after = post("/v1/classify", R"({"texts": ["fine"]})");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(stop().code, 0);
}

TEST_F(CliServe, OverloadAndTimeoutAreReportedNotHung) {
  // A request bigger than the whole queue is refused at once; one that
  // waits longer than its timeout (here: for a batch that waits 2 s for
  // company) gets 504 without holding its connection.
  start("--max-queue 2 --max-wait-ms 2000 --timeout-ms 200");
  const auto refused = post("/v1/classify", R"({"texts": ["a", "b", "c"]})");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THAT(error_of(post("/v1/classify", R"({"texts": ["fine"]})"), 504)["message"].get<std::string>(),
              HasSubstr("no answer within 200 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));
  EXPECT_EQ(stop().code, 0);
}

TEST_F(CliServe, SigtermAnswersRequestsInFlightThenExitsZero) {
  // Batches wait 700 ms for company, so these requests are still queued when the signal arrives.
  start("--max-wait-ms 700");
  std::vector<std::thread> senders;
  std::vector<int> statuses(6, 0);
  for (int i = 0; i < 6; ++i) {
    senders.emplace_back([&, i] {
      const auto r = post("/v1/classify", R"({"texts": ["the film was great, loved the music"]})");
      statuses[static_cast<std::size_t>(i)] = r ? r->status : -1;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto ended = stop();
  for (auto& t : senders) t.join();
  EXPECT_EQ(statuses, std::vector<int>(6, 200));
  EXPECT_EQ(ended.code, 0) << ended.err;
  EXPECT_THAT(ended.err, HasSubstr("drained"));
  EXPECT_FALSE(client().Get("/healthz"));  // no longer listening
}

TEST_F(CliServe, ListeningBeyondLoopbackNeedsAnExplicitFlag) {
  const auto refused = cli_run("serve --model " + run("clf") + " --host 0.0.0.0 --port 0", dir_->path());
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("add --public"));
  const auto missing = cli_run("serve --model " + run("nothing-here") + " --port 0", dir_->path());
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nothing-here"));
}

}  // namespace
}  // namespace ulmfit
