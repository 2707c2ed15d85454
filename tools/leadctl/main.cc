// leadctl: command-line tool for leadflow operators and developers. `leadctl --help`.
#include <unistd.h>

#include <cstdio>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/config/yaml_proto.h"
#include "common/grpc/channel.h"
#include "common/kafka/admin.h"
#include "leadflow/config/v1/scoring_rules.pb.h"
#include "tools/leadctl/bus_baseline.h"
#include "tools/leadctl/csv_mapping.h"
#include "tools/leadctl/demo.h"
#include "tools/leadctl/import.h"
#include "tools/leadctl/load.h"
#include "tools/leadctl/model_eval.h"
#include "tools/leadctl/stack_env.h"
#include "tools/leadctl/workload.h"

namespace {

// The client TLS flags, the same on every subcommand that dials gRPC (docs/OPERATIONS.md).
void AddTlsFlags(CLI::App* command, leadflow::grpc_util::ClientTlsOptions* tls) {
  command->add_option("--tls-ca", tls->ca_file,
                      "dial gRPC over TLS, verifying the server against this PEM CA file");
  command->add_option("--tls-cert", tls->cert_file,
                      "PEM client certificate for mutual TLS (with --tls-key; implies TLS, "
                      "verified against the system's roots without --tls-ca)");
  command->add_option("--tls-key", tls->key_file, "PEM private key of --tls-cert");
  command->add_option("--tls-server-name", tls->server_name,
                      "name the server certificates must carry (default: the address's host)");
}

// `leadctl import`: resolves the capture address, runs the import with a progress display on
// stderr (redrawn in place on a terminal, a line per 10 % otherwise) and prints the summary.
absl::Status RunImportCommand(leadflow::leadctl::ImportOptions options,
                              const std::string& mapping_path, std::string target,
                              const std::string& env_file, bool no_progress,
                              const leadflow::grpc_util::Dialer& dialer) {
  absl::StatusOr<leadflow::config::v1::CsvMapping> mapping =
      leadflow::leadctl::LoadCsvMapping(mapping_path);
  if (!mapping.ok()) return mapping.status();
  options.mapping = *std::move(mapping);
  if (target.empty()) {
    auto env = leadflow::leadctl::LoadStackEnv(env_file);
    if (!env.ok()) return env.status();
    auto it = env->find("LEADFLOW_CAPTURE_GRPC_ADDR");
    if (it == env->end()) {
      return absl::NotFoundError(env_file + " names no LEADFLOW_CAPTURE_GRPC_ADDR; use --target");
    }
    target = it->second;
  }
  const bool tty = isatty(STDERR_FILENO) == 1;
  const absl::Time start = absl::Now();
  absl::Time last_draw = absl::InfinitePast();
  int last_decile = -1;
  auto on_progress = [&](const leadflow::leadctl::ImportProgress& p) {
    if (no_progress) return;
    const absl::Time now = absl::Now();
    const std::string line = leadflow::leadctl::FormatProgress(p, now - start);
    if (tty) {
      if (now - last_draw < absl::Milliseconds(100)) return;
      last_draw = now;
      std::fprintf(stderr, "\r%s", line.c_str());
    } else {
      const int decile =
          p.total_bytes == 0 ? 0 : static_cast<int>(10 * p.bytes_read / p.total_bytes);
      if (decile == last_decile) return;
      last_decile = decile;
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  };
  std::unique_ptr<leadflow::leadctl::LeadBatchSubmitter> submitter =
      leadflow::leadctl::MakeGrpcSubmitter(dialer, target, absl::Seconds(120));
  absl::StatusOr<leadflow::leadctl::ImportSummary> summary =
      leadflow::leadctl::RunImport(options, *submitter, on_progress);
  if (tty && !no_progress) std::fprintf(stderr, "\n");
  if (!summary.ok()) return summary.status();
  std::printf("%s", leadflow::leadctl::FormatSummary(options.csv_path, *summary).c_str());
  return absl::OkStatus();
}

// `leadctl model-eval`: the model settings from --rules (a scoring.yaml), then the evaluation.
absl::Status RunModelEvalCommand(const std::string& csv, const std::string& mapping,
                                 const std::string& label_column, const std::string& rules_path,
                                 leadflow::leadctl::ModelEvalOptions options) {
  if (!rules_path.empty()) {
    leadflow::config::v1::ScoringRules rules;
    if (absl::Status s = leadflow::config::LoadYamlProto(rules_path, &rules); !s.ok()) return s;
    absl::StatusOr<leadflow::scoring::ModelSettings> settings =
        leadflow::scoring::CompileModelSettings(rules.model());
    if (!settings.ok()) return settings.status();
    options.settings = *settings;
  }
  absl::StatusOr<leadflow::leadctl::ModelEvalReport> report =
      leadflow::leadctl::EvaluateModelOnCsv(csv, mapping, label_column, options);
  if (!report.ok()) return report.status();
  std::printf("%s", leadflow::leadctl::FormatReport(*report).c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"leadctl — leadflow command-line tool"};
  app.require_subcommand(1);

  auto* topics = app.add_subcommand("topics", "manage Kafka topics");
  auto* create = topics->add_subcommand("create", "create every leadflow topic and DLQ");
  std::string bootstrap = "127.0.0.1:19092";
  std::string prefix;
  int partitions = 3;
  create->add_option("--bootstrap", bootstrap, "Kafka bootstrap servers");
  create->add_option("--prefix", prefix, "topic name prefix");
  create->add_option("--partitions", partitions, "partitions per topic")
      ->check(CLI::Range(1, 1024));

  auto* demo = app.add_subcommand("demo", "feed a demo workload into a running stack and report");
  std::string env_file = "build/stack/stack.env";
  leadflow::leadctl::DemoOptions demo_options;
  demo->add_option("--env", env_file, "endpoints file written by scripts/stack.sh");
  demo->add_option("--leads", demo_options.leads, "number of people")
      ->check(CLI::Range(1, 1000000));
  demo->add_option("--seed", demo_options.seed, "random seed");
  demo->add_option("--prefix", demo_options.topic_prefix, "topic name prefix");
  demo->add_option("--settle-seconds", demo_options.settle_seconds, "max wait for the pipeline");
  leadflow::grpc_util::ClientTlsOptions tls;  // one subcommand runs: they share it
  AddTlsFlags(demo, &tls);

  auto* import = app.add_subcommand(
      "import", "stream a CSV file of leads into capture (SubmitLeads), with a column mapping");
  leadflow::leadctl::ImportOptions import_options;
  std::string mapping_path;
  std::string capture_target;
  bool no_progress = false;
  import->add_option("file", import_options.csv_path, "the CSV file; first row = column names")
      ->required()
      ->check(CLI::ExistingFile);
  import->add_option("--mapping", mapping_path, "column mapping YAML (docs/IMPORT.md)")
      ->required()
      ->check(CLI::ExistingFile);
  import->add_option("--target", capture_target,
                     "capture gRPC address (default: LEADFLOW_CAPTURE_GRPC_ADDR from --env)");
  import->add_option("--env", env_file, "endpoints file written by scripts/stack.sh");
  import->add_option("--rejects", import_options.reject_path,
                     "reject file (default: FILE with .rejects.csv)");
  import->add_option("--import-id", import_options.import_id,
                     "mixed into derived request ids; a new id re-submits every row");
  import->add_option("--batch-size", import_options.batch_size, "rows per SubmitLeads call")
      ->check(CLI::Range(1, 100000));
  import->add_option("--parallel", import_options.parallel, "SubmitLeads calls in flight")
      ->check(CLI::Range(1, 64));
  import->add_flag("--no-progress", no_progress, "no progress display");
  AddTlsFlags(import, &tls);

  auto* sample_csv = app.add_subcommand("sample-csv",
                                        "write the demo workload's people as a CSV for import with "
                                        "docs/examples/import-mapping.yaml");
  int sample_rows = 10000;
  uint64_t sample_seed = 7;
  std::string sample_run = "s1";
  std::string sample_out;
  sample_csv->add_option("--rows", sample_rows, "people")->check(CLI::Range(0, 100000000));
  sample_csv->add_option("--seed", sample_seed, "random seed");
  sample_csv->add_option("--run", sample_run,
                         "run stamp in e-mails and ids: another stamp makes other people");
  sample_csv->add_option("--out", sample_out, "the file to write (default: standard output)");

  auto* load = app.add_subcommand(
      "load", "open-loop load through a running stack, then verify: throughput, latency, loss");
  leadflow::leadctl::LoadOptions load_options;
  std::string load_json;
  load->add_option("--env", env_file, "endpoints file written by scripts/stack.sh");
  load->add_option("--leads", load_options.leads, "number of people")
      ->check(CLI::Range(1, 10000000));
  load->add_option("--rate", load_options.rate, "leads per second (0 = as fast as possible)")
      ->check(CLI::Range(0.0, 1e6));
  load->add_option("--activities-per-lead", load_options.activities_per_lead,
                   "Segment calls per lead")
      ->check(CLI::Range(0, 100));
  load->add_option("--grpc-fraction", load_options.grpc_fraction,
                   "share of leads submitted over gRPC instead of leads.inbound")
      ->check(CLI::Range(0.0, 1.0));
  load->add_option("--duplicate-fraction", load_options.duplicate_fraction,
                   "share of leads submitted twice with the same request id")
      ->check(CLI::Range(0.0, 1.0));
  load->add_option("--seed", load_options.seed, "random seed");
  load->add_option("--prefix", load_options.topic_prefix, "topic name prefix");
  load->add_option("--settle-seconds", load_options.settle_seconds,
                   "longest wait for every lead to be accounted for");
  load->add_option("--json", load_json, "also write the report as JSON to this file");
  load->add_flag("--baseline", load_options.baseline,
                 "then run the raw-bus baseline: as many messages through as many Kafka hops, "
                 "pass-through, and report the pipeline as a fraction of it");
  load->add_option("--baseline-messages", load_options.baseline_messages,
                   "messages for the baseline (default: as many as the run sent)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000000}));
  load->add_option("--partitions", load_options.partitions,
                   "partitions of the baseline's topics (as the stack's)")
      ->check(CLI::Range(1, 64));
  AddTlsFlags(load, &tls);
  auto* bus = app.add_subcommand(
      "bus", "the raw bus alone: messages through pass-through Kafka hops, as fast as it carries");
  leadflow::leadctl::BusBaselineOptions bus_options;
  bus_options.messages = 200000;
  bus->add_option("--env", env_file, "endpoints file written by scripts/stack.sh");
  bus->add_option("--hops", bus_options.hops,
                  "consume -> produce hops (1: what one service's hop carries; 4: the pipeline's)")
      ->check(CLI::Range(1, 16));
  bus->add_option("--messages", bus_options.messages, "messages sent into the chain")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  bus->add_option("--partitions", bus_options.partitions, "partitions of the chain's topics")
      ->check(CLI::Range(1, 64));
  bus->add_option("--prefix", bus_options.topic_prefix, "topic name prefix");
  bus->add_option("--queue-messages", bus_options.producer_queue_messages,
                  "the sending producer's local queue (queue.buffering.max.messages; 0: default)")
      ->check(CLI::Range(0, 10000000));
  auto* model_eval = app.add_subcommand(
      "model-eval",
      "replay a labelled CSV through scoring's conversion model; AUC and log loss on a hold-out");
  std::string eval_csv;
  std::string eval_mapping;
  std::string label_column = "won";
  std::string eval_rules;
  leadflow::leadctl::ModelEvalOptions eval_options;
  model_eval->add_option("file", eval_csv, "the labelled CSV file; first row = column names")
      ->required()
      ->check(CLI::ExistingFile);
  model_eval
      ->add_option("--mapping", eval_mapping,
                   "column mapping YAML, as for import (docs/IMPORT.md), plus activity.<type>, "
                   "page.<category> and category")
      ->required()
      ->check(CLI::ExistingFile);
  model_eval->add_option("--label-column", label_column,
                         "column holding the outcome: won/lost, yes/no, 1/0, true/false");
  model_eval->add_option("--holdout", eval_options.holdout, "fraction of rows held out")
      ->check(CLI::Range(0.01, 0.99));
  model_eval->add_option("--rules", eval_rules,
                         "scoring rule file whose `model` settings to use (default: defaults)");

  CLI11_PARSE(app, argc, argv);

  // Reads the TLS files of the flags, so a bad one fails before anything is sent.
  const absl::StatusOr<leadflow::grpc_util::Dialer> dialer =
      leadflow::grpc_util::Dialer::Create(tls);
  absl::Status status;
  if (!dialer.ok()) {
    status = dialer.status();
  } else if (create->parsed()) {
    status = leadflow::kafka::CreateLeadflowTopics({{"bootstrap.servers", bootstrap}}, prefix,
                                                   partitions);
    if (status.ok()) std::printf("topics ready\n");
  } else if (demo->parsed()) {
    auto env = leadflow::leadctl::LoadStackEnv(env_file);
    status = env.ok() ? leadflow::leadctl::RunDemo(*env, demo_options, *dialer) : env.status();
  } else if (load->parsed()) {
    auto env = leadflow::leadctl::LoadStackEnv(env_file);
    absl::StatusOr<leadflow::leadctl::LoadReport> report =
        env.ok() ? leadflow::leadctl::RunLoad(*env, load_options, *dialer)
                 : absl::StatusOr<leadflow::leadctl::LoadReport>(env.status());
    status = report.status();
    if (report.ok()) {
      std::printf("%s", leadflow::leadctl::FormatLoadReport(load_options, *report).c_str());
      if (!load_json.empty()) {
        std::FILE* f = std::fopen(load_json.c_str(), "w");
        if (f == nullptr) {
          status = absl::PermissionDeniedError(load_json + ": cannot write");
        } else {
          std::fprintf(f, "%s\n", leadflow::leadctl::LoadReportJson(load_options, *report).c_str());
          std::fclose(f);
        }
      }
      // Lost or doubled effects fail the run, so scripts and CI can rely on the exit code.
      if (status.ok() && (report->unaccounted > 0 || report->duplicate_effects > 0)) {
        status = absl::DataLossError("leads unaccounted for or effects doubled (see report)");
      }
    }
  } else if (bus->parsed()) {
    auto env = leadflow::leadctl::LoadStackEnv(env_file);
    status = env.ok() ? leadflow::leadctl::RunBusCommand(*env, bus_options) : env.status();
  } else if (import->parsed()) {
    status = RunImportCommand(import_options, mapping_path, capture_target, env_file, no_progress,
                              *dialer);
  } else if (sample_csv->parsed()) {
    std::FILE* out = sample_out.empty() ? stdout : std::fopen(sample_out.c_str(), "w");
    if (out == nullptr) {
      status = absl::PermissionDeniedError(sample_out + ": cannot write");
    } else {
      leadflow::leadctl::WriteSampleCsv(sample_rows, sample_seed, sample_run, out);
      if (std::ferror(out) || (out != stdout && std::fclose(out) != 0)) {
        status = absl::DataLossError(
            absl::StrCat(sample_out.empty() ? "standard output" : sample_out, ": write failed"));
      }
    }
  } else if (model_eval->parsed()) {
    status = RunModelEvalCommand(eval_csv, eval_mapping, label_column, eval_rules, eval_options);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "leadctl: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
