// leadctl: command-line tool for leadflow operators and developers. `leadctl --help`.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "common/kafka/admin.h"
#include "tools/leadctl/demo.h"
#include "tools/leadctl/stack_env.h"

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

  CLI11_PARSE(app, argc, argv);

  absl::Status status;
  if (create->parsed()) {
    status = leadflow::kafka::CreateLeadflowTopics({{"bootstrap.servers", bootstrap}}, prefix,
                                                   partitions);
    if (status.ok()) std::printf("topics ready\n");
  } else if (demo->parsed()) {
    auto env = leadflow::leadctl::LoadStackEnv(env_file);
    status = env.ok() ? leadflow::leadctl::RunDemo(*env, demo_options) : env.status();
  }
  if (!status.ok()) {
    std::fprintf(stderr, "leadctl: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
