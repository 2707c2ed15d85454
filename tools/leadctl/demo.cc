#include "tools/leadctl/demo.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/topics.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/lead.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "leadflow/nurturing/v1/nurturing.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/leadctl/kafka_io.h"
#include "tools/leadctl/workload.h"

namespace leadflow::leadctl {
namespace {

using events::v1::LeadSubmission;

const char* CategoryName(events::v1::Category c) {
  switch (c) {
    case events::v1::CATEGORY_COLD:
      return "cold";
    case events::v1::CATEGORY_WARM:
      return "warm";
    case events::v1::CATEGORY_QUALIFIED:
      return "qualified";
    case events::v1::CATEGORY_SALES_READY:
      return "sales-ready";
    default:
      return "unscored";
  }
}

}  // namespace

absl::Status RunDemo(const std::map<std::string, std::string>& env, const DemoOptions& options,
                     const grpc_util::Dialer& dialer) {
  auto get = [&env](const std::string& key) -> std::string {
    auto it = env.find(key);
    return it == env.end() ? "" : it->second;
  };
  const std::string bootstrap = get("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS");
  const std::string capture_addr = get("LEADFLOW_CAPTURE_GRPC_ADDR");
  if (bootstrap.empty() || capture_addr.empty()) {
    return absl::FailedPreconditionError("stack env lacks Kafka or capture endpoints");
  }
  const kafka::Topics topics(options.topic_prefix);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = MakeProducer(bootstrap);
  if (!producer.ok()) return producer.status();

  std::mt19937_64 rng(options.seed);
  // Every run is new people: ids carry a run stamp, and the report counts only this run's leads.
  const std::string run = absl::FormatTime("%Y%m%d%H%M%S", absl::Now(), absl::UTCTimeZone());
  const std::string run_prefix = absl::StrCat("demo-", run, "-");
  std::vector<DemoLead> leads;
  for (int i = 0; i < options.leads; ++i) leads.push_back(MakeLead(i, run, rng));
  const absl::Time start = absl::Now();
  std::printf("leadflow demo: %d leads, seed %llu\n\n", options.leads,
              static_cast<unsigned long long>(options.seed));

  // 1. Capture: half over gRPC (one client stream), half as JSON on leads.inbound.
  auto channel = dialer.Dial(capture_addr);
  auto capture = capture::v1::Capture::NewStub(channel);
  grpc::ClientContext stream_context;
  stream_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  capture::v1::SubmitLeadsResponse batch;
  auto writer = capture->SubmitLeads(&stream_context, &batch);
  int via_grpc = 0, via_kafka = 0, resubmitted = 0;
  std::vector<kafka::OutboundMessage> inbound;
  for (size_t i = 0; i < leads.size(); ++i) {
    const LeadSubmission& s = leads[i].submission;
    if (i % 2 == 0) {
      capture::v1::SubmitLeadRequest request;
      *request.mutable_submission() = s;
      writer->Write(request);
      ++via_grpc;
    } else {
      inbound.push_back(
          JsonMessage(topics.Name(kafka::kLeadsInbound), s.email(), events::ToJson(s)));
      ++via_kafka;
    }
    if (i % 10 == 3) {
      // The same person again through the other intake (gRPC; i is odd, so the original went to
      // leads.inbound), shouted in upper case with a new key.
      LeadSubmission again = s;
      again.set_request_id(absl::StrCat(s.request_id(), "-again"));
      again.set_email(absl::AsciiStrToUpper(s.email()));
      again.set_first_name(absl::AsciiStrToUpper(s.first_name()));
      again.set_source("email_campaign");
      capture::v1::SubmitLeadRequest request;
      *request.mutable_submission() = again;
      writer->Write(request);
      ++resubmitted;
    }
  }
  writer->WritesDone();
  grpc::Status grpc_status = writer->Finish();
  if (!grpc_status.ok()) {
    return absl::UnavailableError(absl::StrCat("SubmitLeads: ", grpc_status.error_message()));
  }
  for (kafka::OutboundMessage& m : inbound) {
    if (absl::Status s = (*producer)->SendAndWait(std::move(m), absl::Seconds(30)); !s.ok()) {
      return s;
    }
  }
  for (const capture::v1::ItemResult& item : batch.results()) {
    if (item.has_error()) {
      std::printf("capture   rejected item %lld: %s\n", static_cast<long long>(item.index()),
                  item.error().message().c_str());
    }
  }
  // The stream is done before leads.inbound is fed, so a resubmission creates its lead and the
  // original, consumed later, merges into it.
  std::printf(
      "capture   %d leads and %d resubmissions of leads sent as JSON via gRPC (created %lld, "
      "merged %lld, rejected %lld), %d as JSON on %s (each resubmitted one merges)\n",
      via_grpc, resubmitted, static_cast<long long>(batch.created()),
      static_cast<long long>(batch.merged()), static_cast<long long>(batch.rejected()), via_kafka,
      topics.Name(kafka::kLeadsInbound).c_str());

  // 2. Activities, keyed by the upstream user id the leads were submitted with.
  int activities = 0;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < leads.size(); ++i) {
    const DemoLead& l = leads[i];
    auto send = [&](const std::string& json) {
      kafka::OutboundMessage m =
          JsonMessage(topics.Name(kafka::kActivitiesInbound), l.external_id, json);
      (void)(*producer)->Send(std::move(m), [](const absl::Status&) {});
      ++activities;
    };
    int n = 0;
    for (int p = 0; p < l.page_views; ++p) {
      send(SegmentJson("page", absl::StrCat(run_prefix, "act-", i, "-", n++), l.external_id, "Blog",
                       absl::StrCat("https://www.example.com/blog/post-", p), now));
    }
    for (int p = 0; p < l.pricing_views; ++p) {
      send(SegmentJson("page", absl::StrCat(run_prefix, "act-", i, "-", n++), l.external_id,
                       "Pricing", "https://www.example.com/pricing", now));
    }
    if (l.webinar) {
      send(SegmentJson("track", absl::StrCat(run_prefix, "act-", i, "-", n++), l.external_id,
                       "Webinar Attended", "", now));
    }
    if (l.demo_request) {
      send(SegmentJson("track", absl::StrCat(run_prefix, "act-", i, "-", n++), l.external_id,
                       "Demo Requested", "", now));
    }
  }
  if (absl::Status s = (*producer)->Flush(absl::Seconds(30)); !s.ok()) return s;
  std::printf("tracking  %d activities on %s\n", activities,
              topics.Name(kafka::kActivitiesInbound).c_str());

  // 3. Watch the outputs settle.
  absl::StatusOr<std::unique_ptr<TopicReader>> reader = TopicReader::Create(
      bootstrap,
      {topics.Name(kafka::kLeadsCaptured), topics.Name(kafka::kLeadsScored),
       topics.Name(kafka::kLeadsRouted), topics.Name(kafka::kNurtureTouches),
       topics.Name(kafka::kNurtureEnrollments), topics.Name(kafka::kLeadsInbound) + ".dlq"});
  if (!reader.ok()) return reader.status();
  std::set<std::string> captured_leads;
  std::map<std::string, events::v1::Category> category;
  std::map<std::string, events::v1::LeadRouted> routed;           // by lead, last decision
  std::map<std::string, std::vector<std::string>> routed_events;  // event id → lead, per copy
  struct Touch {
    std::string lead, track;
    int step;
  };
  std::vector<Touch> touches;
  std::map<std::string, std::string> enrolled_in;  // lead → its latest track
  int dlq = 0;
  absl::Time last_change = absl::Now();
  // A rebalance of the reader's own group can hand it a message again; that is the reader's
  // re-read, not a duplicate on the wire (which has a new offset), so each offset counts once.
  std::set<std::tuple<std::string, int32_t, int64_t>> seen;
  auto on_message = [&](const kafka::ConsumedMessage& m) {
    if (!seen.insert({m.topic, m.partition, m.offset}).second) return;
    last_change = absl::Now();
    if (m.topic == topics.Name(kafka::kLeadsCaptured)) {
      events::v1::LeadCaptured e;
      if (events::Decode(m, &e).ok() && e.envelope().trace_id().starts_with(run_prefix)) {
        captured_leads.insert(e.envelope().lead_id());
      }
    } else if (m.topic == topics.Name(kafka::kLeadsScored)) {
      events::v1::LeadScored e;
      if (events::Decode(m, &e).ok()) category[e.envelope().lead_id()] = e.score().category();
    } else if (m.topic == topics.Name(kafka::kLeadsRouted)) {
      events::v1::LeadRouted e;
      if (events::Decode(m, &e).ok()) {
        // Wire duplicates are counted for this run's decisions only: a lead merged into one
        // from an earlier run brings that run's history along.
        if (e.envelope().trace_id().starts_with(run_prefix)) {
          routed_events[e.envelope().event_id()].push_back(e.envelope().lead_id());
        }
        routed[e.envelope().lead_id()] = e;
      }
    } else if (m.topic == topics.Name(kafka::kNurtureTouches)) {
      events::v1::NurtureTouch t;
      if (events::Decode(m, &t).ok()) {
        touches.push_back({t.envelope().lead_id(), t.track_id(), t.step()});
      }
    } else if (m.topic == topics.Name(kafka::kNurtureEnrollments)) {
      events::v1::NurtureEnrollmentChanged e;
      if (events::Decode(m, &e).ok() &&
          e.kind() == events::v1::NurtureEnrollmentChanged::KIND_ENROLLED) {
        enrolled_in[e.envelope().lead_id()] = e.track_id();
      }
    } else if (m.value.find(run_prefix) != std::string::npos) {
      ++dlq;
    }
  };
  const int expected = options.leads;
  (*reader)->ReadUntil(
      on_message,
      [&] {
        // Settled: this run's leads captured (fuzzy matching may merge namesakes at one
        // company) and nothing new on any output topic for a few seconds.
        return static_cast<int>(captured_leads.size()) >= expected * 9 / 10 &&
               absl::Now() - last_change > absl::Seconds(5);
      },
      absl::Seconds(options.settle_seconds));

  // Other runs' leads are on the same topics: keep this run's only.
  auto this_run = [&](const std::string& lead) { return captured_leads.contains(lead); };
  std::erase_if(routed, [&](const auto& kv) { return !this_run(kv.first); });
  std::erase_if(category, [&](const auto& kv) { return !this_run(kv.first); });

  // 4. Outcomes for routed leads: a third won, a third lost (recycled into nurturing).
  int won = 0, lost = 0;
  int k = 0;
  for (const auto& [lead_id, decision] : routed) {
    const int bucket = k++ % 3;
    if (bucket == 2) continue;
    events::v1::LeadOutcome outcome;
    outcome.set_kind(bucket == 0 ? events::v1::LeadOutcome::KIND_WON
                                 : events::v1::LeadOutcome::KIND_LOST);
    outcome.set_rep_id(decision.rep_id());
    outcome.set_team_id(decision.team_id());
    outcome.set_reason(bucket == 0 ? "signed annual plan" : "budget frozen until next year");
    outcome.set_value(bucket == 0 ? 12000 : 0);
    outcome.set_request_id(absl::StrCat(run_prefix, "outcome-", lead_id));
    *outcome.mutable_envelope() =
        events::MakeEnvelope({.event_id = events::DeriveEventId("outcome", outcome.request_id()),
                              .lead_id = lead_id,
                              .occurred_at = absl::Now(),
                              .produced_at = absl::Now(),
                              .causation_id = outcome.request_id(),
                              .trace_id = decision.envelope().trace_id(),
                              .producer = "leadctl-demo"});
    (void)(*producer)->Send(events::Encode(topics.Name(kafka::kLeadsOutcomes), lead_id, outcome),
                            [](const absl::Status&) {});
    (bucket == 0 ? won : lost)++;
  }
  (void)(*producer)->Flush(absl::Seconds(30));
  if (won + lost > 0) {
    std::printf("outcomes  %d won, %d lost (lost leads are recycled into nurturing)\n", won, lost);
    last_change = absl::Now();
    (*reader)->ReadUntil(
        on_message, [&] { return absl::Now() - last_change > absl::Seconds(4); },
        absl::Seconds(30));
  }

  // 5. Report (this run's leads only).
  std::erase_if(routed, [&](const auto& kv) { return !this_run(kv.first); });
  std::erase_if(category, [&](const auto& kv) { return !this_run(kv.first); });
  std::map<std::string, std::set<int>> touches_by_track;  // track → steps
  std::map<std::string, int> touch_count_by_track;
  std::set<std::string> nurtured_leads;
  for (const Touch& t : touches) {
    if (!this_run(t.lead)) continue;
    touches_by_track[t.track].insert(t.step);
    ++touch_count_by_track[t.track];
    nurtured_leads.insert(t.lead);
  }
  std::printf("\n== Routed leads per team (%zu leads routed) ==\n", routed.size());
  std::map<std::string, std::map<std::string, int>> per_team;
  for (const auto& [lead, r] : routed) ++per_team[r.team_id()][r.rep_id()];
  for (const auto& [team, reps] : per_team) {
    int total = 0;
    std::string rep_list;
    for (const auto& [rep, n] : reps) {
      total += n;
      absl::StrAppend(&rep_list, rep_list.empty() ? "" : ", ", rep.empty() ? "(queued)" : rep, "=",
                      n);
    }
    std::printf("  %-16s %4d   %s\n", team.c_str(), total, rep_list.c_str());
  }
  int shown = 0;
  for (const auto& [lead, r] : routed) {
    if (shown++ == 3) break;
    std::printf("  e.g. %s %s (%s, %s) → %s/%s: %s\n", r.lead().first_name().c_str(),
                r.lead().last_name().c_str(), r.lead().country().c_str(),
                r.lead().job_title().c_str(), r.team_id().c_str(), r.rep_id().c_str(),
                r.reason().c_str());
  }
  std::erase_if(enrolled_in, [&](const auto& kv) { return !this_run(kv.first); });
  std::map<std::string, int> enrolled_by_track;
  for (const auto& [lead, track] : enrolled_in) ++enrolled_by_track[track];
  for (const auto& [track, n] : touch_count_by_track) enrolled_by_track.try_emplace(track, 0);
  std::printf("\n== Nurturing (%zu leads enrolled, %zu touched so far) ==\n", enrolled_in.size(),
              nurtured_leads.size());
  for (const auto& [track, n] : enrolled_by_track) {
    std::printf("  %-20s %4d enrolled, %4d touches, steps sent so far: %zu\n", track.c_str(), n,
                touch_count_by_track[track], touches_by_track[track].size());
  }
  // Enrolled but not touched yet: show when, so a demo at night (quiet hours in the leads'
  // time zones) or a track whose first step has a delay does not look like a silent pipeline.
  const auto untouched = std::find_if(enrolled_in.begin(), enrolled_in.end(), [&](const auto& kv) {
    return !nurtured_leads.contains(kv.first);
  });
  if (untouched != enrolled_in.end() && !get("LEADFLOW_NURTURING_GRPC_ADDR").empty()) {
    auto nurturing =
        nurturing::v1::Nurturing::NewStub(dialer.Dial(get("LEADFLOW_NURTURING_GRPC_ADDR")));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    nurturing::v1::GetEnrollmentsRequest request;
    request.set_lead_id(untouched->first);
    nurturing::v1::GetEnrollmentsResponse response;
    if (nurturing->GetEnrollments(&ctx, request, &response).ok()) {
      for (const auto& e : response.enrollments()) {
        if (e.state() != "active" || !e.has_next_due_at()) continue;
        const absl::Time due = absl::FromUnixSeconds(e.next_due_at().seconds());
        std::printf(
            "  e.g. %s in %s: step %d due %s UTC (now %s UTC). A touch waits for its step's\n"
            "  delay, quiet hours in the lead's time zone and the frequency cap: deferred, never"
            " dropped.\n",
            untouched->first.c_str(), e.track_id().c_str(), e.next_step() + 1,
            absl::FormatTime("%Y-%m-%d %H:%M", due, absl::UTCTimeZone()).c_str(),
            absl::FormatTime("%H:%M", absl::Now(), absl::UTCTimeZone()).c_str());
        break;
      }
    }
  }
  std::map<std::string, int> by_category;
  for (const auto& [lead, c] : category) ++by_category[CategoryName(c)];
  int duplicate_routes = 0;
  for (const auto& [id, copies] : routed_events) {
    if (this_run(copies.front()) && copies.size() > 1) duplicate_routes += copies.size() - 1;
  }
  std::printf("\n== Funnel ==\n");
  std::printf("  submissions        %d (%d people + %d resubmissions)\n",
              options.leads + resubmitted, options.leads, resubmitted);
  std::printf("  leads captured     %zu (duplicates merged: %d)\n", captured_leads.size(),
              options.leads + resubmitted - static_cast<int>(captured_leads.size()));
  std::printf("  scored             %zu:", category.size());
  for (const auto& [c, n] : by_category) std::printf(" %s=%d", c.c_str(), n);
  std::printf("\n  routed to sales    %zu\n", routed.size());
  std::printf("  nurtured           %zu enrolled, %zu touched\n", enrolled_in.size(),
              nurtured_leads.size());
  std::printf("  won / lost         %d / %d\n", won, lost);
  std::printf("  rejected to DLQ    %d\n", dlq);
  std::printf("  duplicate routing events on the wire: %d\n", duplicate_routes);
  std::printf("\nelapsed %.1f s\n", absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

}  // namespace leadflow::leadctl
