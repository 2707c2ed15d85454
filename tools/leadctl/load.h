#pragma once

// `leadctl load`: an open-loop load generator and a verifier for a running leadflow stack.
//
// Generator: `leads` synthetic people (workload.h) at a fixed `rate` (leads/s; 0 = as fast as
// the producer takes them), each followed by `activities_per_lead` Segment calls on
// `activities.inbound` (page views, a pricing view, a demo request for the hottest third).
// Leads go as JSON on `leads.inbound`, except `grpc_fraction` of them through capture's
// SubmitLead (4 client threads); `duplicate_fraction` of them are submitted a second time with
// the same request id, which must change nothing. Every lead has e-mail consent and a time zone
// where it is daytime, so a nurtured lead's first touch is not deferred by quiet hours.
//
// Verifier: reads `leads.captured`, `leads.activity`, `leads.routed` and `nurture.touches` from
// the beginning and, for this run's leads only (ids carry a run stamp), reports:
//   - throughput: leads captured per second and activities tracked per second, first to last;
//   - latency from submission to the routing decision (p50 / p99 / p99.9; the submission time is
//     the generator's clock at send, the decision time the routing event's produced_at);
//   - unaccounted (must be 0): leads sent but never captured, and captured leads that were
//     neither routed (assigned or queued) nor touched by nurturing by the end of the settle
//     time, by score category. Every generated person has their own company and e-mail domain
//     and no phone number, so capture's matching merges none of them (not even with an earlier
//     run's people) and sent = captured when nothing is lost. It also means fuzzy blocking sets
//     stay small and no phone is parsed: capture's cost here is below a real population's
//     (BM_CaptureNormalize and BM_CaptureMatchAndMerge measure those);
//   - duplicate effects (must be 0): a lead created twice, routed more than once, or sent the
//     same nurture step more than once — different event ids for one effect;
//   - wire duplicates (reported, harmless): the same event id delivered more than once;
//   - end to end: leads accounted for (routed or nurtured) per second, from the first
//     submission to the last lead's first routing decision or touch, and how long after the
//     last submission that last lead was accounted for (the drain; in a fault run, the time
//     until every accepted lead is routed or nurtured again);
//   - with `baseline`, the raw-bus baseline (bus_baseline.h) run right after the verification
//     with as many messages as this run sent (leads + activities), bodies sampled from this
//     run's topics, and the pipeline's end-to-end throughput as a fraction of it: pipeline
//     input messages (leads + activities) per second ÷ bus messages per second through the same
//     number of hops.
//
// Thread safety: RunLoad is a program; call it from one thread.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/grpc/channel.h"
#include "tools/leadctl/bus_baseline.h"

namespace leadflow::leadctl {

struct LoadOptions {
  int leads = 1000;
  // Leads per second; 0 = as fast as possible.
  double rate = 0;
  int activities_per_lead = 3;
  double grpc_fraction = 0.1;
  double duplicate_fraction = 0.05;
  uint64_t seed = 11;
  std::string topic_prefix;
  // Longest wait for every accepted lead to be accounted for.
  int settle_seconds = 120;
  // Also run the raw-bus baseline (bus_baseline.h) and report the pipeline as a fraction of it.
  bool baseline = false;
  // Messages for the baseline; 0 = as many as the run sent (leads + activities).
  int64_t baseline_messages = 0;
  int partitions = 3;
};

struct LoadReport {
  int64_t leads_sent = 0;
  int64_t activities_sent = 0;
  int64_t duplicates_sent = 0;
  double send_seconds = 0;
  int64_t captured = 0;
  int64_t activities_tracked = 0;
  double captured_per_second = 0;
  double activities_per_second = 0;
  int64_t routed = 0;
  int64_t nurtured = 0;
  // Latency submission → routing decision, milliseconds.
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  // Leads sent but never captured (every person is unique, so sent = captured when none is lost).
  int64_t not_captured = 0;
  // The request ids of the first 20 leads sent whose request id no
  // leads.captured event carries (to look for in the services' logs and the DLQ).
  std::vector<std::string> missing_request_ids;
  // not_captured plus captured leads neither routed nor touched, by score category ("unscored"
  // if none seen, "not captured").
  int64_t unaccounted = 0;
  std::map<std::string, int64_t> unaccounted_by_category;
  int64_t duplicate_effects = 0;
  int64_t wire_duplicates = 0;
  double elapsed_seconds = 0;
  // Leads routed or nurtured per second, first submission → last lead accounted for.
  double end_to_end_per_second = 0;
  // When the last submission was sent and the last lead accounted for (Unix seconds), and the
  // difference (the drain).
  double send_end_unix = 0;
  double last_accounted_unix = 0;
  double drain_seconds = 0;
  // When the verifier read the last lead's first routing decision or touch (Unix seconds): the
  // conservative end of a recovery (includes the verifier's own reading lag).
  double last_accounted_seen_unix = 0;
  // With options.baseline.
  bool has_bus = false;
  BusBaselineReport bus;
  // (leads + activities) per second end to end ÷ bus messages per second.
  double bus_fraction = 0;
};

// Runs the load against the stack described by `env` (the KEY=VALUE file of scripts/stack.sh:
// LEADFLOW_KAFKA_BOOTSTRAP_SERVERS, LEADFLOW_CAPTURE_GRPC_ADDR), dialing capture with `dialer`.
absl::StatusOr<LoadReport> RunLoad(const std::map<std::string, std::string>& env,
                                   const LoadOptions& options, const grpc_util::Dialer& dialer);

// The report as text, and as one JSON object (for scripts and docs/BENCHMARKS.md).
std::string FormatLoadReport(const LoadOptions& options, const LoadReport& report);
std::string LoadReportJson(const LoadOptions& options, const LoadReport& report);

}  // namespace leadflow::leadctl
