// Crash, interrupt and disk-full behaviour of a real training process:
// kill -9 / SIGINT mid-run, then --resume, must give the losses and final
// weights of an uninterrupted run.
#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::write_file;

class CliResume : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("ULMFIT_TINY_DATA", dir_.path().c_str(), 1);
    std::string general, valid;
    for (const auto& d : testing::tiny_documents(120, 1)) general += d + "\n";
    for (const auto& d : testing::tiny_documents(20, 2)) valid += d + "\n";
    write_file(dir_ / "general.txt", general);
    write_file(dir_ / "general-valid.txt", valid);
  }

  /// A tiny LM long enough (a few seconds, ~2,000 steps) to be stopped mid-run.
  /// Precision is pinned: `auto` measures bf16 against fp32 at start-up, and on
  /// a busy machine two runs could measure their way into different precisions.
  std::string pretrain_args(const std::string& out, const std::string& extra = "") const {
    return "pretrain --config " + std::string(ULMFIT_SOURCE_DIR) + "/configs/tiny-lm.yaml --set train.epochs=12 " +
           "train.checkpoint_every=25 train.log_every=1 precision=fp32 model.backbone=" + backbone_ + " " + extra +
           " --out " + (dir_ / out).string();
  }

  /// The uninterrupted run every stopped-and-resumed one must match.
  void run_reference() {
    const auto r = cli_run(pretrain_args("reference"), dir_.path());
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::size_t metrics_lines(const std::string& run) const {
    std::error_code ec;
    if (!fs::exists(dir_ / run / "metrics.jsonl", ec)) return 0;
    const auto text = util::read_file(dir_ / run / "metrics.jsonl");
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }

  /// Starts a run and waits until it has written a checkpoint and trained on.
  pid_t start_and_wait_for_progress(const std::string& run) {
    const pid_t pid = cli_spawn(pretrain_args(run), dir_.path());
    const bool ready = wait_until([&] {
      return fs::exists(dir_ / run / "state/checkpoint.pt") && metrics_lines(run) >= 300;
    });
    EXPECT_TRUE(ready) << "the run made no progress";
    return pid;
  }

  /// Losses per global step and evaluation lines of a run's metrics.jsonl.
  static std::pair<std::map<std::int64_t, double>, std::vector<nlohmann::json>> metrics(const fs::path& run) {
    std::map<std::int64_t, double> losses;
    std::vector<nlohmann::json> evals;
    std::istringstream in(util::read_file(run / "metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j.contains("eval")) {
        evals.push_back(j);
      } else if (j.contains("loss")) {
        losses[j.at("global_step").get<std::int64_t>()] = j.at("loss");
      }
    }
    return {losses, evals};
  }

  void expect_same_as_reference(const std::string& run) {
    const auto [want_losses, want_evals] = metrics(dir_ / "reference");
    const auto [losses, evals] = metrics(dir_ / run);
    ASSERT_EQ(losses.size(), want_losses.size());  // nothing logged twice, nothing missing
    for (const auto& [step, loss] : want_losses) {
      ASSERT_TRUE(losses.count(step)) << "global step " << step;
      EXPECT_NEAR(losses.at(step), loss, 1e-6 * std::abs(loss)) << "global step " << step;
    }
    ASSERT_EQ(evals.size(), want_evals.size());
    for (std::size_t i = 0; i < evals.size(); ++i) {
      EXPECT_NEAR(evals[i].at("valid_loss").get<double>(), want_evals[i].at("valid_loss").get<double>(), 1e-6);
    }
    EXPECT_EQ(util::read_file(dir_ / run / "model.pt"), util::read_file(dir_ / "reference/model.pt"))
        << "final weights differ";
  }

  /// No temporary file of an atomic write is left anywhere in the run.
  void expect_no_temporaries(const std::string& run) const {
    for (const auto& entry : fs::recursive_directory_iterator(dir_ / run)) {
      EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
    }
  }

  /// One signal mid-run: exit 130 with the resume command, and the resumed
  /// run ends as the uninterrupted one.
  void expect_signal_checkpoints_and_resumes(int signal_number, const std::string& verb) {
    run_reference();
    const pid_t pid = start_and_wait_for_progress(verb);
    ASSERT_EQ(::kill(pid, signal_number), 0);
    const auto stopped = cli_wait(pid, dir_.path());
    ASSERT_EQ(stopped.code, 130) << stopped.err;
    EXPECT_THAT(stopped.err, HasSubstr("error: pretrain: " + verb + " at epoch"));
    EXPECT_THAT(stopped.err, HasSubstr("resume with: ulmfit pretrain --resume " + (dir_ / verb).string()));
    const auto resumed = cli_run("pretrain --resume " + (dir_ / verb).string(), dir_.path());
    ASSERT_EQ(resumed.code, 0) << resumed.err;
    expect_same_as_reference(verb);
  }

  testing::TempDir dir_;
  std::string backbone_ = "awd_lstm";
};

TEST_F(CliResume, KillNineMidRunThenResumeMatchesAnUninterruptedRun) {
  run_reference();
  const pid_t pid = start_and_wait_for_progress("killed");
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  const auto killed = cli_wait(pid, dir_.path());
  ASSERT_EQ(killed.signal, SIGKILL) << "the run ended before the kill: " << killed.err;
  EXPECT_LT(metrics_lines("killed"), metrics_lines("reference"));

  const auto resumed = cli_run("pretrain --resume " + (dir_ / "killed").string(), dir_.path());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("resuming at epoch"));
  expect_same_as_reference("killed");
}

TEST_F(CliResume, AQrnnLanguageModelResumesExactlyToo) {
  // Its carried state is each layer's c and the first layer's last input.
  backbone_ = "qrnn";
  run_reference();
  const pid_t pid = start_and_wait_for_progress("killed");
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(cli_wait(pid, dir_.path()).signal, SIGKILL);
  const auto resumed = cli_run("pretrain --resume " + (dir_ / "killed").string(), dir_.path());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_as_reference("killed");
}

TEST_F(CliResume, SigintFinishesTheStepWritesACheckpointExits130AndResumes) {
  expect_signal_checkpoints_and_resumes(SIGINT, "interrupted");
}

TEST_F(CliResume, SigtermAlsoCheckpointsExits130AndResumes) {
  expect_signal_checkpoints_and_resumes(SIGTERM, "terminated");
}

TEST_F(CliResume, SecondSigintExitsAtOnceAndTheLastCheckpointStillLoads) {
  run_reference();
  const pid_t pid = start_and_wait_for_progress("twice");
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  const auto stopped = cli_wait(pid, dir_.path());
  EXPECT_EQ(stopped.code, 130) << stopped.err;
  expect_no_temporaries("twice");
  const auto resumed = cli_run("pretrain --resume " + (dir_ / "twice").string(), dir_.path());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_as_reference("twice");
}

TEST_F(CliResume, FullDiskFailsClearlyAndKeepsThePreviousCheckpoint) {
  run_reference();
  const pid_t pid = start_and_wait_for_progress("full");
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  ASSERT_EQ(cli_wait(pid, dir_.path()).code, 130);
  const auto checkpoint = dir_ / "full/state/checkpoint.pt";
  const std::string before = util::read_file(checkpoint);
  // A file-size limit below the checkpoint's size: its next write fails
  // part-way, as on a full disk (bash's ulimit -f counts KiB).
  const auto limit_kib = std::to_string(before.size() / 1024 - 4);
  const std::string cmd = "sh -c " + shell_quote("ulimit -f " + limit_kib + "; exec " + std::string(ULMFIT_BINARY) +
                                                 " pretrain --resume " + (dir_ / "full").string()) +
                          " 2>" + shell_quote((dir_ / "full-stderr.txt").string());
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = util::read_file(dir_ / "full-stderr.txt");
  EXPECT_THAT(err, HasSubstr("error: " + checkpoint.string() + ": write failed: File too large"));
  EXPECT_EQ(util::read_file(checkpoint), before) << "the previous checkpoint changed";
  expect_no_temporaries("full");
  // With room again, the kept checkpoint resumes to the uninterrupted result.
  const auto resumed = cli_run("pretrain --resume " + (dir_ / "full").string(), dir_.path());
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_as_reference("full");
}

TEST_F(CliResume, ResumeArgumentsAreChecked) {
  const auto none = cli_run("pretrain --resume " + (dir_ / "nowhere").string(), dir_.path());
  EXPECT_EQ(none.code, 2);
  EXPECT_THAT(none.err, HasSubstr("nowhere: run directory not found (--resume)"));

  const auto mixed = cli_run("pretrain --resume " + (dir_ / "x").string() + " --config y.yaml", dir_.path());
  EXPECT_EQ(mixed.code, 2);
  EXPECT_THAT(mixed.err, HasSubstr("drop --config"));

  const auto neither = cli_run("pretrain", dir_.path());
  EXPECT_EQ(neither.code, 2);
  EXPECT_THAT(neither.err, HasSubstr("--config is required (or --resume RUN)"));

  ASSERT_EQ(cli_run(pretrain_args("lm", "train.epochs=1"), dir_.path()).code, 0);
  const auto wrong_stage = cli_run("adapt --resume " + (dir_ / "lm").string(), dir_.path());
  EXPECT_EQ(wrong_stage.code, 2);
  EXPECT_THAT(wrong_stage.err, HasSubstr("is a pretrain run; resume it with: ulmfit pretrain --resume"));

  // Resuming a finished run trains nothing more and changes no weights.
  const std::string weights = util::read_file(dir_ / "lm/model.pt");
  const auto finished = cli_run("pretrain --resume " + (dir_ / "lm").string(), dir_.path());
  EXPECT_EQ(finished.code, 0) << finished.err;
  EXPECT_EQ(util::read_file(dir_ / "lm/model.pt"), weights);

  fs::remove(dir_ / "lm/meta.yaml");
  const auto no_meta = cli_run("pretrain --resume " + (dir_ / "lm").string(), dir_.path());
  EXPECT_EQ(no_meta.code, 2);
  EXPECT_THAT(no_meta.err, HasSubstr("has no meta.yaml"));
}

}  // namespace
}  // namespace ulmfit
