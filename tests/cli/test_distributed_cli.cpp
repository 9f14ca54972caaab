// Data-parallel training over Gloo on this machine's loopback: two ranks with
// half the batch each must train like one process with the whole batch, a
// lost rank must stop the other with its name, and a checkpoint must resume
// only with the world size that wrote it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <sstream>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::write_file;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Per global step, the loss a run logged (the last line for a step wins: a
/// resumed run logs again the steps after its checkpoint). Only whole lines
/// are read: the tests poll this file while rank 0 appends to it, and a
/// reader can see a line that straddles a page half written.
std::map<std::int64_t, double> step_losses(const fs::path& run) {
  std::map<std::int64_t, double> losses;
  std::string text = util::read_file(run / "metrics.jsonl");
  const auto last_newline = text.rfind('\n');
  text.resize(last_newline == std::string::npos ? 0 : last_newline + 1);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("eval") && j.contains("loss")) losses[j.at("global_step").get<std::int64_t>()] = j.at("loss");
  }
  return losses;
}

/// The largest relative difference between two runs' step losses; both must
/// have logged the same steps.
double loss_difference(const fs::path& a, const fs::path& b) {
  const auto la = step_losses(a), lb = step_losses(b);
  EXPECT_EQ(la.size(), lb.size());
  EXPECT_GT(la.size(), 10u);
  double worst = 0;
  for (const auto& [step, loss] : la) {
    const auto it = lb.find(step);
    if (it == lb.end()) {
      ADD_FAILURE() << "step " << step << " missing from " << b;
      return INFINITY;
    }
    worst = std::max(worst, std::abs(loss - it->second) / std::max(std::abs(loss), 1e-12));
  }
  return worst;
}

/// A run's best weights (model.pt), parameters and buffers (BatchNorm's
/// running statistics), by name.
std::map<std::string, torch::Tensor> run_weights(const fs::path& dir) {
  auto run = pipeline::RunDir::open(dir.string());
  const auto cfg = run.read_config();
  std::shared_ptr<torch::nn::Module> model;
  if (run.meta().task == "lm") {
    model = nn::make_language_model(cfg.model, run.meta().vocab_size).ptr();
  } else {
    model = nn::make_classifier(cfg.model, cfg.train, run.meta().vocab_size,
                                static_cast<int64_t>(run.meta().labels.size()))
                .ptr();
  }
  run.load_weights(*model, "model.pt");
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value();
  for (const auto& b : model->named_buffers()) out[b.key()] = b.value().to(torch::kDouble);
  return out;
}

double weight_difference(const fs::path& a, const fs::path& b) {
  const auto wa = run_weights(a), wb = run_weights(b);
  EXPECT_EQ(wa.size(), wb.size());
  double worst = 0;
  for (const auto& [name, t] : wa) {
    worst = std::max(worst, (t.to(torch::kDouble) - wb.at(name).to(torch::kDouble)).abs().max().item<double>());
  }
  return worst;
}

class CliDistributed : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("ULMFIT_TINY_DATA", dir_.path().c_str(), 1);
    testing::write_tiny_corpora(dir_.path());
    // Reviews that differ from one another, so BatchNorm's statistics are not
    // those of identical rows: "loved"/"great"/"fun" ones are pos.
    std::string csv = "text,label\n";
    for (const auto& d : testing::tiny_documents(96, 9)) {
      const bool pos = d.find("loved") != std::string::npos || d.find("great") != std::string::npos ||
                       d.find("fun") != std::string::npos;
      csv += "\"" + d + "\"," + (pos ? "pos" : "neg") + "\n";
    }
    write_file(dir_ / "labelled.csv", csv);
  }

  /// fp32 everywhere (`auto` could measure its way to bf16), one step per line.
  std::string lm_args(const std::string& out, const std::string& extra = "") const {
    return "pretrain --config " + std::string(ULMFIT_SOURCE_DIR) + "/configs/tiny-lm.yaml --set precision=fp32 " +
           "train.log_every=1 train.batch_size=4 " + extra + " --out " + (dir_ / out).string();
  }

  CliResult two_ranks(const std::string& args) const {
    return cli_run("launch --nproc 2 -- ulmfit " + args, dir_.path());
  }

  /// One rank of a two-rank group, started directly as torchrun would.
  pid_t spawn_rank(int rank, int port, const std::string& args) const {
    const std::string env = "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
                            " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port);
    const auto log = dir_ / ("rank" + std::to_string(rank) + ".txt");
    const std::string cmd =
        "exec env " + env + " " + std::string(ULMFIT_BINARY) + " " + args + " </dev/null >/dev/null 2>" + shell_quote(log);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }

  testing::TempDir dir_;
};

TEST_F(CliDistributed, LanguageModelOnTwoRanksTrainsLikeOneProcessWithDropouts) {
  // Every AWD-LSTM regulariser on: dropouts (each rank applies its rows of
  // the global batch's masks), variable windows, AR and TAR.
  const auto one = cli_run(lm_args("one"), dir_.path());
  ASSERT_EQ(one.code, 0) << one.err;
  const auto two = two_ranks(lm_args("two"));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_THAT(two.err, HasSubstr("rank 0 of 2 (gloo)"));
  EXPECT_LT(loss_difference(dir_ / "one", dir_ / "two"), 1e-5);
  EXPECT_LT(weight_difference(dir_ / "one", dir_ / "two"), 1e-5);
  // Rank 0 wrote the run; a second writer would have left its own lines.
  EXPECT_EQ(step_losses(dir_ / "two").size(), step_losses(dir_ / "one").size());
}

TEST_F(CliDistributed, ClassifierOnTwoRanksTrainsLikeOneProcessWithSynchronisedBatchNorm) {
  ASSERT_EQ(cli_run(lm_args("lm"), dir_.path()).code, 0);
  auto args = [&](const std::string& out) {
    return "finetune --config " + std::string(ULMFIT_SOURCE_DIR) + "/configs/tiny-classifier.yaml --from " +
           (dir_ / "lm").string() + " --set precision=fp32 train.log_every=1 train.batch_size=8 train.epochs=4 --out " +
           (dir_ / out).string();
  };
  const auto one = cli_run(args("one"), dir_.path());
  ASSERT_EQ(one.code, 0) << one.err;
  const auto two = two_ranks(args("two"));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_LT(loss_difference(dir_ / "one", dir_ / "two"), 1e-5);
  // Weights and the head's BatchNorm running statistics, from the whole batch.
  EXPECT_LT(weight_difference(dir_ / "one", dir_ / "two"), 1e-5);
}

TEST_F(CliDistributed, AKilledRankStopsTheOtherNamingItAndTheRunResumesExactly) {
  const std::string extra = "train.epochs=12 train.checkpoint_every=25";
  ASSERT_EQ(cli_run(lm_args("reference", extra), dir_.path()).code, 0);
  const int port = free_port();
  const pid_t rank0 = spawn_rank(0, port, lm_args("run", extra));
  const pid_t rank1 = spawn_rank(1, port, lm_args("run", extra));
  const bool progressed = wait_until([&] {
    std::error_code ec;
    return fs::exists(dir_ / "run/state/checkpoint.pt", ec) && fs::exists(dir_ / "run/metrics.jsonl", ec) &&
           step_losses(dir_ / "run").size() >= 300;
  });
  ASSERT_TRUE(progressed) << "the two ranks made no progress";
  ::kill(rank1, SIGKILL);
  ::waitpid(rank1, nullptr, 0);
  const auto killed_at = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(rank0, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_LT(seconds, 60.0);
  const auto err = util::read_file(dir_ / "rank0.txt");
  EXPECT_THAT(err, HasSubstr("rank 1 (pid"));
  EXPECT_THAT(err, HasSubstr("exited"));

  // Another world size is refused with one line, and the run is left as it was.
  const auto before = util::read_file(dir_ / "run/metrics.jsonl");
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(before.back(), '\n') << "rank 0 stopped with a line half written";
  const auto refused = cli_run("pretrain --resume " + (dir_ / "run").string(), dir_.path());
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("written by 2 rank(s), resumed by 1"));
  EXPECT_EQ(refused.err.find("error:"), refused.err.rfind("error:"));  // one error line
  EXPECT_EQ(util::read_file(dir_ / "run/metrics.jsonl"), before);
  // ... unless asked for: a copy of the run finishes on one process.
  fs::copy(dir_ / "run", dir_ / "copy", fs::copy_options::recursive);
  const auto changed = cli_run("pretrain --resume " + (dir_ / "copy").string() + " --allow-world-size-change", dir_.path());
  EXPECT_EQ(changed.code, 0) << changed.err;
  EXPECT_EQ(step_losses(dir_ / "copy").size(), step_losses(dir_ / "reference").size());

  const auto resumed = two_ranks("pretrain --resume " + (dir_ / "run").string());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_LT(loss_difference(dir_ / "reference", dir_ / "run"), 1e-5);
  EXPECT_LT(weight_difference(dir_ / "reference", dir_ / "run"), 1e-5);
}

TEST_F(CliDistributed, SigintToTheLauncherStopsEveryRankAtOneStepWithOneCheckpointAndResumes) {
  const std::string extra = "train.epochs=12 train.checkpoint_every=1000";
  ASSERT_EQ(cli_run(lm_args("reference", extra), dir_.path()).code, 0);
  const pid_t launcher = cli_spawn("launch --nproc 2 -- ulmfit " + lm_args("run", extra), dir_.path());
  ASSERT_TRUE(wait_until([&] {
    std::error_code ec;
    return fs::exists(dir_ / "run/metrics.jsonl", ec) && step_losses(dir_ / "run").size() >= 300;
  })) << "the two ranks made no progress";
  ::kill(launcher, SIGINT);
  const auto ended = cli_wait(launcher, dir_.path());
  EXPECT_EQ(ended.code, 130) << ended.err;
  // Both ranks stopped at the same step, and rank 0 alone wrote the file.
  EXPECT_THAT(ended.err, HasSubstr("checkpoint written: " + (dir_ / "run/state/checkpoint.pt").string()));
  EXPECT_THAT(ended.err, HasSubstr("checkpoint written: rank 0's"));
  const auto resumed = two_ranks("pretrain --resume " + (dir_ / "run").string());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_LT(loss_difference(dir_ / "reference", dir_ / "run"), 1e-5);
  EXPECT_LT(weight_difference(dir_ / "reference", dir_ / "run"), 1e-5);
}

TEST_F(CliDistributed, AnIncompleteOrWrongLaunchEnvironmentIsExitTwoNamingTheVariable) {
  const auto no_addr = cli_run(lm_args("x"), dir_.path(), "", "-u MASTER_ADDR WORLD_SIZE=2 RANK=0 MASTER_PORT=29500");
  EXPECT_EQ(no_addr.code, 2);
  EXPECT_THAT(no_addr.err, HasSubstr("MASTER_ADDR: not set, but WORLD_SIZE is 2"));
  const auto bad_rank = cli_run(lm_args("x"), dir_.path(), "", "WORLD_SIZE=2 RANK=5 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500");
  EXPECT_EQ(bad_rank.code, 2);
  EXPECT_THAT(bad_rank.err, HasSubstr("RANK: '5' is not an integer in [0, 1]"));
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

TEST_F(CliDistributed, ABatchThatDoesNotDivideAmongTheRanksIsRefusedBeforeAnythingIsWritten) {
  const auto r = two_ranks(lm_args("odd", "train.batch_size=5"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("train.batch_size: 5 does not divide among 2 ranks"));
  EXPECT_FALSE(fs::exists(dir_ / "odd"));
}

}  // namespace
}  // namespace ulmfit
