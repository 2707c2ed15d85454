#include "tools/leadctl/load.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/events/codec.h"
#include "common/events/envelope.h"
#include "common/kafka/topics.h"
#include "leadflow/capture/v1/capture.grpc.pb.h"
#include "leadflow/events/v1/activity.pb.h"
#include "leadflow/events/v1/nurture.pb.h"
#include "leadflow/events/v1/routing.pb.h"
#include "leadflow/events/v1/scoring.pb.h"
#include "nlohmann/json.hpp"
#include "tools/leadctl/kafka_io.h"
#include "tools/leadctl/workload.h"

namespace leadflow::leadctl {
namespace {

using events::v1::LeadSubmission;

constexpr int kGrpcClients = 4;
// Message bodies kept per topic for the bus baseline.
constexpr size_t kSamplesPerTopic = 1000;
// Request ids of leads not captured, listed in the report (the count is complete).
constexpr size_t kMaxListedMissing = 20;

void Sample(std::vector<std::string>& samples, const std::string& body) {
  if (samples.size() < kSamplesPerTopic) samples.push_back(body);
}

// A POSIX Etc zone where it is around noon now, so quiet hours defer no first touch.
std::string DaytimeZone() {
  const int utc_hour = static_cast<int>(absl::ToCivilHour(absl::Now(), absl::UTCTimeZone()).hour());
  int offset = 12 - utc_hour;
  if (offset > 12) offset -= 24;
  if (offset < -12) offset += 24;
  if (offset == 0) return "Etc/UTC";
  return absl::StrCat("Etc/GMT", offset > 0 ? "-" : "+", std::abs(offset));  // inverted signs
}

// Submissions handed to the gRPC client threads.
class GrpcSender {
 public:
  explicit GrpcSender(std::shared_ptr<grpc::Channel> channel)
      : stub_(capture::v1::Capture::NewStub(std::move(channel))) {
    for (int i = 0; i < kGrpcClients; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~GrpcSender() { Close(); }

  void Send(LeadSubmission s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(s));
  }
  // Waits for every queued submission to be answered. Returns the number that failed.
  int64_t Close() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      LeadSubmission s;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;
        s = std::move(queue_.front());
        queue_.pop_front();
      }
      capture::v1::SubmitLeadRequest request;
      *request.mutable_submission() = std::move(s);
      // A submission cut off by capture going away (a fault run kills it) is sent again with
      // the same request id, which capture answers with the same lead: what a real client does.
      const absl::Time give_up = absl::Now() + absl::Seconds(120);
      grpc::Status status;
      do {
        capture::v1::SubmitLeadResponse response;
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(std::min(give_up, absl::Now() + absl::Seconds(30))));
        context.set_wait_for_ready(true);
        status = stub_->SubmitLead(&context, request, &response);
      } while ((status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                status.error_code() == grpc::StatusCode::CANCELLED) &&
               absl::Now() < give_up);
      if (!status.ok()) {
        absl::MutexLock lock(&mu_);
        ++failed_;
      }
    }
  }

  std::unique_ptr<capture::v1::Capture::Stub> stub_;
  absl::Mutex mu_;
  std::deque<LeadSubmission> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

double Percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return sorted[i];
}

const char* CategoryName(events::v1::Category c) {
  switch (c) {
    case events::v1::CATEGORY_COLD:
      return "cold";
    case events::v1::CATEGORY_WARM:
      return "warm";
    case events::v1::CATEGORY_QUALIFIED:
      return "qualified";
    case events::v1::CATEGORY_SALES_READY:
      return "sales_ready";
    default:
      return "unscored";
  }
}

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const std::map<std::string, std::string>& env,
                                   const LoadOptions& options, const grpc_util::Dialer& dialer) {
  auto get = [&env](const std::string& key) -> std::string {
    auto it = env.find(key);
    return it == env.end() ? "" : it->second;
  };
  const std::string bootstrap = get("LEADFLOW_KAFKA_BOOTSTRAP_SERVERS");
  const std::string capture_addr = get("LEADFLOW_CAPTURE_GRPC_ADDR");
  if (bootstrap.empty() || (options.grpc_fraction > 0 && capture_addr.empty())) {
    return absl::FailedPreconditionError("stack env lacks the Kafka or capture endpoints");
  }
  const kafka::Topics topics(options.topic_prefix);
  absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = MakeProducer(bootstrap);
  if (!producer.ok()) return producer.status();

  const absl::Time start = absl::Now();
  const std::string run =
      absl::StrCat(absl::FormatTime("%Y%m%d%H%M%S", start, absl::UTCTimeZone()), "s", options.seed);
  const std::string run_prefix = absl::StrCat("load-", run, "-");
  const std::string zone = DaytimeZone();
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  LoadReport report;

  // 1. Generate, open loop: lead i is due at start + i / rate whatever the system does.
  std::atomic<int64_t> send_failures{0};
  auto on_delivery = [&send_failures](const absl::Status& s) {
    if (!s.ok()) ++send_failures;
  };
  std::unique_ptr<GrpcSender> grpc_sender;
  if (options.grpc_fraction > 0) {
    grpc_sender = std::make_unique<GrpcSender>(dialer.Dial(capture_addr));
  }
  const std::string inbound = topics.Name(kafka::kLeadsInbound);
  const std::string activities = topics.Name(kafka::kActivitiesInbound);
  // Bodies for the baseline's topics: what this run sends, then the pipeline's topics in the
  // order of a lead's path (bus_baseline.h).
  std::vector<std::vector<std::string>> samples(kPipelineHops + 1);
  auto send_json = [&](const std::string& topic, const std::string& key, std::string json) {
    Sample(samples[0], json);
    (void)(*producer)->Send(JsonMessage(topic, key, std::move(json)), on_delivery);
  };
  for (int i = 0; i < options.leads; ++i) {
    if (options.rate > 0) {
      const absl::Time due = start + absl::Seconds(i / options.rate);
      const absl::Time now = absl::Now();
      if (due > now) absl::SleepFor(due - now);  // pacing the generator, not synchronisation
    }
    DemoLead lead = MakeLead(i, run, rng, "load");
    LeadSubmission& s = lead.submission;
    const absl::Time now = absl::Now();
    // One company and e-mail domain per person and run, and no phone number (the workload's
    // numbers repeat across runs), so capture matches no two of them — not even with an earlier
    // run's people on the same topics — and every lead sent must come out as exactly one
    // captured lead.
    s.set_company(absl::StrCat(s.company(), " ", run, "-", i));
    s.set_email(absl::StrCat("person.", i, "@", run, "-", i, ".example.com"));
    s.clear_phone();
    s.set_time_zone(zone);
    s.clear_consents();
    events::v1::Consent* consent = s.add_consents();
    consent->set_channel(events::v1::CHANNEL_EMAIL);
    consent->set_granted(true);
    *s.mutable_submitted_at() = events::ToProto(now);
    const bool duplicate = coin(rng) < options.duplicate_fraction;
    const LeadSubmission copy = duplicate ? s : LeadSubmission();
    if (grpc_sender != nullptr && coin(rng) < options.grpc_fraction) {
      grpc_sender->Send(std::move(s));
    } else {
      send_json(inbound, s.email(), events::ToJson(s));
    }
    ++report.leads_sent;
    if (duplicate) {
      send_json(inbound, copy.email(), events::ToJson(copy));
      ++report.duplicates_sent;
    }
    for (int k = 0; k < options.activities_per_lead; ++k) {
      const std::string id = absl::StrCat(run_prefix, "act-", i, "-", k);
      std::string json;
      if (k == 1) {
        json = SegmentJson("page", id, lead.external_id, "Pricing",
                           "https://www.example.com/pricing", now);
      } else if (k == 2 && lead.demo_request) {
        json = SegmentJson("track", id, lead.external_id, "Demo Requested", "", now);
      } else {
        json = SegmentJson("page", id, lead.external_id, "Blog",
                           absl::StrCat("https://www.example.com/blog/post-", k), now);
      }
      send_json(activities, lead.external_id, std::move(json));
      ++report.activities_sent;
    }
  }
  const int64_t grpc_failures = grpc_sender != nullptr ? grpc_sender->Close() : 0;
  if (absl::Status s = (*producer)->Flush(absl::Seconds(120)); !s.ok()) return s;
  const absl::Time send_end = absl::Now();
  report.send_seconds = absl::ToDoubleSeconds(send_end - start);
  if (send_failures > 0 || grpc_failures > 0) {
    return absl::UnavailableError(absl::StrCat(send_failures.load(), " sends to Kafka and ",
                                               grpc_failures, " gRPC submissions failed"));
  }

  // 2. Verify: read every output from the beginning, keep this run's leads.
  absl::StatusOr<std::unique_ptr<TopicReader>> reader = TopicReader::Create(
      bootstrap, {topics.Name(kafka::kLeadsCaptured), topics.Name(kafka::kLeadsActivity),
                  topics.Name(kafka::kLeadsScored), topics.Name(kafka::kLeadsRouted),
                  topics.Name(kafka::kNurtureTouches)});
  if (!reader.ok()) return reader.status();
  struct LeadState {
    absl::Time submitted = absl::InfinitePast();
    absl::Time captured = absl::InfinitePast();
    std::set<std::string> created_ids;
    // Routing decisions by kind: a lead queued and later assigned has one of each; two ids of
    // one kind would be the same decision taken twice.
    std::map<int, std::set<std::string>> route_ids;
    absl::Time first_route = absl::InfiniteFuture();
    // The first routing decision or touch: when the lead was accounted for.
    absl::Time accounted_at = absl::InfiniteFuture();
    // When the verifier read that event: later than accounted_at when the event was produced
    // (its produced_at kept) but reached the topic only later, e.g. re-sent after a crash.
    absl::Time accounted_seen = absl::InfiniteFuture();
    std::map<std::tuple<std::string, int, int>, std::set<std::string>> touch_ids;
    events::v1::Category category = events::v1::CATEGORY_UNSPECIFIED;
    bool accounted = false;
  };
  absl::flat_hash_map<std::string, LeadState> leads;
  // Activity events by lead, counted once the lead is known to be this run's.
  absl::flat_hash_map<std::string, std::vector<absl::Time>> activity_times;
  absl::flat_hash_map<std::string, int> event_copies;  // topic + event id → copies on the wire
  absl::flat_hash_set<std::string> captured_requests;  // trace ids (request ids) of this run's
  std::set<std::tuple<std::string, int32_t, int64_t>> seen;
  // This run's leads created and accounted for so far, kept as events arrive (in any order).
  std::map<std::string, int64_t> read_per_topic;
  int64_t run_created = 0;
  int64_t run_accounted = 0;
  auto mark_accounted = [&](LeadState& l) {
    if (l.accounted) return;
    l.accounted = true;
    l.accounted_seen = absl::Now();
    if (!l.created_ids.empty()) ++run_accounted;
  };
  absl::Time last_message = absl::Now();
  auto on_message = [&](const kafka::ConsumedMessage& m) {
    if (!seen.insert({m.topic, m.partition, m.offset}).second) return;  // the reader's re-read
    last_message = absl::Now();
    ++read_per_topic[m.topic];
    for (int k = 1; k <= kPipelineHops; ++k) {
      static constexpr std::string_view kPath[] = {kafka::kLeadsCaptured, kafka::kLeadsActivity,
                                                   kafka::kLeadsScored, kafka::kLeadsRouted};
      if (m.topic == topics.Name(kPath[k - 1])) Sample(samples[k], m.value);
    }
    if (m.topic == topics.Name(kafka::kLeadsCaptured)) {
      events::v1::LeadCaptured e;
      absl::Status dbg = events::Decode(m, &e);
      if (!dbg.ok() || !absl::StartsWith(e.envelope().trace_id(), run_prefix)) {
        return;
      }
      ++event_copies[absl::StrCat(m.topic, e.envelope().event_id())];
      captured_requests.insert(e.envelope().trace_id());
      if (e.change() != events::v1::LeadCaptured::CHANGE_CREATED) return;
      LeadState& l = leads[e.envelope().lead_id()];
      if (l.created_ids.empty()) {
        ++run_created;
        if (l.accounted) ++run_accounted;
      }
      l.created_ids.insert(e.envelope().event_id());
      l.submitted = events::FromProto(e.envelope().occurred_at());
      l.captured = events::FromProto(e.envelope().produced_at());
    } else if (m.topic == topics.Name(kafka::kLeadsActivity)) {
      events::v1::LeadActivity e;
      if (!events::Decode(m, &e).ok()) return;
      ++event_copies[absl::StrCat(m.topic, e.envelope().event_id())];
      if (event_copies[absl::StrCat(m.topic, e.envelope().event_id())] == 1) {
        activity_times[e.envelope().lead_id()].push_back(
            events::FromProto(e.envelope().produced_at()));
      }
    } else if (m.topic == topics.Name(kafka::kLeadsScored)) {
      events::v1::LeadScored e;
      if (!events::Decode(m, &e).ok()) return;
      // Events of one lead arrive on several topics in no fixed order: an entry made here for a
      // lead whose captured event has not been read yet is kept, and dropped at the end only if
      // the lead never turns out to be this run's.
      leads[e.envelope().lead_id()].category = e.score().category();
    } else if (m.topic == topics.Name(kafka::kLeadsRouted)) {
      events::v1::LeadRouted e;
      if (!events::Decode(m, &e).ok()) return;
      LeadState& l = leads[e.envelope().lead_id()];
      ++event_copies[absl::StrCat(m.topic, e.envelope().event_id())];
      if (e.kind() == events::v1::LeadRouted::KIND_ASSIGNED ||
          e.kind() == events::v1::LeadRouted::KIND_QUEUED) {
        l.route_ids[e.kind()].insert(e.envelope().event_id());
        mark_accounted(l);
        l.first_route = std::min(l.first_route, events::FromProto(e.envelope().produced_at()));
        l.accounted_at = std::min(l.accounted_at, l.first_route);
      }
    } else if (m.topic == topics.Name(kafka::kNurtureTouches)) {
      events::v1::NurtureTouch t;
      if (!events::Decode(m, &t).ok()) return;
      LeadState& l = leads[t.envelope().lead_id()];
      ++event_copies[absl::StrCat(m.topic, t.touch_id())];
      l.touch_ids[{t.track_id(), t.step(), t.attempt()}].insert(t.touch_id());
      l.accounted_at = std::min(l.accounted_at, events::FromProto(t.envelope().produced_at()));
      mark_accounted(l);
    }
  };
  const int64_t expected = options.leads;
  absl::Time last_progress = absl::Now();
  (*reader)->ReadUntil(
      on_message,
      [&] {
        const absl::Time now = absl::Now();
        if (now - last_progress > absl::Seconds(5)) {
          last_progress = now;
          std::string read;
          for (const auto& [topic, n] : read_per_topic) absl::StrAppend(&read, " ", topic, "=", n);
          std::fprintf(stderr,
                       "verifying: %lld of %lld leads captured, %lld accounted for (read%s)\n",
                       static_cast<long long>(run_created), static_cast<long long>(expected),
                       static_cast<long long>(run_accounted), read.c_str());
        }
        const bool all = run_created >= expected && run_accounted == run_created;
        // Done when everything is accounted for and the outputs are quiet (late duplicates
        // would show up here); otherwise keep reading until the settle deadline, because a
        // service restarting or a consumer group rebalancing can pause the outputs for a while.
        return all && now - last_message > absl::Seconds(3);
      },
      absl::Seconds(options.settle_seconds));

  // 3. Report.
  std::vector<double> latencies;
  absl::Time first_submit = absl::InfiniteFuture(), last_capture = absl::InfinitePast();
  absl::Time last_accounted = absl::InfinitePast();
  absl::Time last_seen = absl::InfinitePast();
  int64_t accounted = 0;
  for (auto it = leads.begin(); it != leads.end();) {
    if (it->second.created_ids.empty()) {
      leads.erase(it++);  // another run's lead
    } else {
      ++it;
    }
  }
  report.not_captured =
      std::max<int64_t>(0, report.leads_sent - static_cast<int64_t>(leads.size()));
  report.unaccounted += report.not_captured;
  if (report.not_captured > 0) report.unaccounted_by_category["not captured"] = report.not_captured;
  for (int64_t i = 0; i < report.leads_sent; ++i) {
    if (report.missing_request_ids.size() >= kMaxListedMissing) break;
    std::string request_id = absl::StrCat(run_prefix, i);
    if (!captured_requests.contains(request_id)) {
      report.missing_request_ids.push_back(std::move(request_id));
    }
  }
  for (const auto& [id, l] : leads) {
    ++report.captured;
    first_submit = std::min(first_submit, l.submitted);
    last_capture = std::max(last_capture, l.captured);
    if (l.created_ids.size() > 1) report.duplicate_effects += l.created_ids.size() - 1;
    for (const auto& [kind, ids] : l.route_ids) {
      if (ids.size() > 1) report.duplicate_effects += ids.size() - 1;
    }
    for (const auto& [step, ids] : l.touch_ids) {
      if (ids.size() > 1) report.duplicate_effects += ids.size() - 1;
    }
    if (!l.route_ids.empty() || !l.touch_ids.empty()) {
      ++accounted;
      last_accounted = std::max(last_accounted, l.accounted_at);
      last_seen = std::max(last_seen, l.accounted_seen);
    }
    if (!l.route_ids.empty()) {
      ++report.routed;
      latencies.push_back(absl::ToDoubleMilliseconds(l.first_route - l.submitted));
    } else if (!l.touch_ids.empty()) {
      ++report.nurtured;
    } else {
      ++report.unaccounted;
      ++report.unaccounted_by_category[CategoryName(l.category)];
    }
  }
  absl::Time last_activity = absl::InfinitePast();
  for (const auto& [lead, times] : activity_times) {
    if (!leads.contains(lead)) continue;
    report.activities_tracked += static_cast<int64_t>(times.size());
    for (absl::Time t : times) last_activity = std::max(last_activity, t);
  }
  for (const auto& [id, copies] : event_copies) {
    if (copies > 1) report.wire_duplicates += copies - 1;
  }
  if (report.captured > 0 && last_capture > first_submit) {
    report.captured_per_second =
        report.captured / absl::ToDoubleSeconds(last_capture - first_submit);
  }
  if (report.activities_tracked > 0 && last_activity > first_submit) {
    report.activities_per_second =
        report.activities_tracked / absl::ToDoubleSeconds(last_activity - first_submit);
  }
  std::sort(latencies.begin(), latencies.end());
  report.p50_ms = Percentile(latencies, 0.50);
  report.p99_ms = Percentile(latencies, 0.99);
  report.p999_ms = Percentile(latencies, 0.999);
  report.max_ms = latencies.empty() ? 0 : latencies.back();
  report.send_end_unix = absl::ToDoubleSeconds(send_end - absl::UnixEpoch());
  if (accounted > 0 && last_accounted > first_submit) {
    report.end_to_end_per_second = accounted / absl::ToDoubleSeconds(last_accounted - first_submit);
    report.last_accounted_unix = absl::ToDoubleSeconds(last_accounted - absl::UnixEpoch());
    report.drain_seconds = std::max(0.0, absl::ToDoubleSeconds(last_accounted - send_end));
    report.last_accounted_seen_unix = absl::ToDoubleSeconds(last_seen - absl::UnixEpoch());
  }
  report.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start);

  // 4. The raw bus, same machine, same run, after the pipeline has drained.
  if (options.baseline) {
    BusBaselineOptions bus;
    bus.bootstrap = bootstrap;
    bus.topic_prefix = options.topic_prefix;
    bus.run = run;
    bus.partitions = options.partitions;
    bus.messages = options.baseline_messages > 0
                       ? options.baseline_messages
                       : report.leads_sent + report.duplicates_sent + report.activities_sent;
    for (int k = 1; k <= kPipelineHops; ++k) {
      if (samples[k].empty()) samples[k] = samples[k - 1];  // e.g. nothing routed yet
    }
    bus.samples = std::move(samples);
    std::fprintf(stderr, "baseline: %lld messages through %d hops of the raw bus\n",
                 static_cast<long long>(bus.messages), bus.hops);
    absl::StatusOr<BusBaselineReport> b = RunBusBaseline(bus);
    if (!b.ok()) return b.status();
    report.has_bus = true;
    report.bus = *b;
    if (b->messages_per_second > 0) {
      // Input messages per lead as sent (lead, its activities, a duplicate now and then).
      const double per_lead =
          static_cast<double>(report.leads_sent + report.duplicates_sent + report.activities_sent) /
          static_cast<double>(std::max<int64_t>(1, report.leads_sent));
      report.bus_fraction = report.end_to_end_per_second * per_lead / b->messages_per_second;
    }
  }
  return report;
}

std::string FormatLoadReport(const LoadOptions& o, const LoadReport& r) {
  std::string out = absl::StrFormat(
      "leadflow load: %d leads at %s, %d activities each, %.0f %% via gRPC, %.0f %% "
      "submitted twice\n",
      o.leads, o.rate > 0 ? absl::StrFormat("%.0f leads/s", o.rate) : "full speed",
      o.activities_per_lead, 100 * o.grpc_fraction, 100 * o.duplicate_fraction);
  absl::StrAppendFormat(&out, "  sent        %d leads, %d duplicates, %d activities in %.1f s\n",
                        r.leads_sent, r.duplicates_sent, r.activities_sent, r.send_seconds);
  absl::StrAppendFormat(&out, "  captured    %d leads (%.0f leads/s)\n", r.captured,
                        r.captured_per_second);
  absl::StrAppendFormat(&out, "  tracked     %d activities (%.0f activities/s)\n",
                        r.activities_tracked, r.activities_per_second);
  absl::StrAppendFormat(&out, "  routed      %d; nurtured %d\n", r.routed, r.nurtured);
  absl::StrAppendFormat(&out,
                        "  latency     submission → routed: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f "
                        "ms, max %.1f ms\n",
                        r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms);
  absl::StrAppendFormat(&out, "  unaccounted %d (sent, but not captured, routed or nurtured)",
                        r.unaccounted);
  for (const auto& [category, n] : r.unaccounted_by_category) {
    absl::StrAppendFormat(&out, " %s=%d", category, n);
  }
  if (!r.missing_request_ids.empty()) {
    absl::StrAppend(&out,
                    "\n  not captured (request ids): ", absl::StrJoin(r.missing_request_ids, " "));
  }
  absl::StrAppendFormat(&out, "\n  duplicate effects %d; wire duplicates %d\n", r.duplicate_effects,
                        r.wire_duplicates);
  absl::StrAppendFormat(&out,
                        "  end to end  %.0f leads/s routed or nurtured; last one %.1f s after the "
                        "last submission\n",
                        r.end_to_end_per_second, r.drain_seconds);
  absl::StrAppendFormat(&out, "  elapsed     %.1f s\n", r.elapsed_seconds);
  if (r.has_bus) {
    std::string sizes;
    for (double b : r.bus.mean_bytes) absl::StrAppendFormat(&sizes, " %.0f", b);
    absl::StrAppendFormat(&out,
                          "  raw bus     %.0f messages/s through %d hops (%d of %d messages in "
                          "%.1f s; bodies%s bytes); pipeline = %.1f %% of the bus\n",
                          r.bus.messages_per_second, r.bus.hops, r.bus.delivered, r.bus.messages,
                          r.bus.seconds, sizes, 100 * r.bus_fraction);
  }
  return out;
}

std::string LoadReportJson(const LoadOptions& o, const LoadReport& r) {
  nlohmann::json j = {
      {"leads", o.leads},
      {"rate", o.rate},
      {"activities_per_lead", o.activities_per_lead},
      {"grpc_fraction", o.grpc_fraction},
      {"duplicate_fraction", o.duplicate_fraction},
      {"leads_sent", r.leads_sent},
      {"duplicates_sent", r.duplicates_sent},
      {"activities_sent", r.activities_sent},
      {"send_seconds", r.send_seconds},
      {"captured", r.captured},
      {"captured_per_second", r.captured_per_second},
      {"activities_tracked", r.activities_tracked},
      {"activities_per_second", r.activities_per_second},
      {"routed", r.routed},
      {"nurtured", r.nurtured},
      {"latency_ms",
       {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"p999", r.p999_ms}, {"max", r.max_ms}}},
      {"unaccounted", r.unaccounted},
      {"not_captured", r.not_captured},
      {"missing_request_ids", r.missing_request_ids},
      {"unaccounted_by_category", r.unaccounted_by_category},
      {"duplicate_effects", r.duplicate_effects},
      {"wire_duplicates", r.wire_duplicates},
      {"elapsed_seconds", r.elapsed_seconds},
      {"end_to_end_per_second", r.end_to_end_per_second},
      {"send_end_unix", r.send_end_unix},
      {"last_accounted_unix", r.last_accounted_unix},
      {"drain_seconds", r.drain_seconds},
      {"last_accounted_seen_unix", r.last_accounted_seen_unix},
  };
  if (r.has_bus) {
    j["bus"] = {{"hops", r.bus.hops},
                {"messages", r.bus.messages},
                {"delivered", r.bus.delivered},
                {"seconds", r.bus.seconds},
                {"messages_per_second", r.bus.messages_per_second},
                {"mean_bytes", r.bus.mean_bytes}};
    j["bus_fraction"] = r.bus_fraction;
  }
  return j.dump();
}

}  // namespace leadflow::leadctl
