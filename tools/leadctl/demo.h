#pragma once

// `leadctl demo`: feeds a realistic workload into a running stack and reports what happened.
//
// Workload (deterministic for a seed): leads from several sources — half through Capture's gRPC
// SubmitLeads stream, half as JSON on `leads.inbound` — with ~10 % resubmitted through the other
// intake in different casing (they must merge, not duplicate), plus Segment-style activities on
// `activities.inbound` (page views, pricing views, demo requests, webinars), and, once leads are
// routed, outcomes on `leads.outcomes` (won / lost). The report reads the output topics from the
// beginning: routed leads per team and rep, nurture enrolments and touches, and a funnel.

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/grpc/channel.h"

namespace leadflow::leadctl {

struct DemoOptions {
  int leads = 300;
  uint64_t seed = 7;
  std::string topic_prefix;
  // Seconds to wait for the pipeline to settle.
  int settle_seconds = 60;
};

// Runs against the stack described by `env` (scripts/stack.sh's endpoints file), dialing capture
// and nurturing with `dialer`.
absl::Status RunDemo(const std::map<std::string, std::string>& env, const DemoOptions& options,
                     const grpc_util::Dialer& dialer);

}  // namespace leadflow::leadctl
