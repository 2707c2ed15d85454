#include "services/scoring/tasks.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/runtime/periodic.h"
#include "spdlog/spdlog.h"

namespace leadflow::scoring {
namespace {

prometheus::Counter& MakeCounter(prometheus::Registry& registry, const std::string& name,
                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

void LogError(log::RateLimitedLog& limiter, const std::string& what, const absl::Status& status) {
  int64_t suppressed = 0;
  if (!limiter.ShouldLog(&suppressed)) return;
  spdlog::error("scoring: {}: {} ({} similar errors suppressed)", what, status.ToString(),
                suppressed);
}

// Sends one pass's events and tells, after a flush, which leads had every event acknowledged.
// The callbacks may outlive the pass (the producer reports on destruction), so they hold the
// shared record, not the batch.
class DeliveryBatch {
 public:
  explicit DeliveryBatch(kafka::Producer& producer)
      : producer_(producer), failed_(std::make_shared<Failed>()) {}

  void Send(const std::string& lead_id, kafka::OutboundMessage message) {
    std::shared_ptr<Failed> failed = failed_;
    kafka::Producer::DeliveryCallback on_delivery = [failed, lead_id](const absl::Status& status) {
      if (status.ok()) return;
      absl::MutexLock lock(&failed->mu);
      failed->leads.push_back(lead_id);
    };
    if (absl::Status s = producer_.Send(std::move(message), on_delivery); !s.ok()) on_delivery(s);
  }

  // Waits for every report; false for a lead with a failed (or unconfirmed) delivery.
  std::vector<std::string> Failures(absl::Duration timeout, bool* flushed) {
    *flushed = producer_.Flush(timeout).ok();
    absl::MutexLock lock(&failed_->mu);
    return failed_->leads;
  }

 private:
  struct Failed {
    absl::Mutex mu;
    std::vector<std::string> leads ABSL_GUARDED_BY(mu);
  };
  kafka::Producer& producer_;
  const std::shared_ptr<Failed> failed_;
};

std::string DefaultOwner(const void* self) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", getpid(), ":", reinterpret_cast<uintptr_t>(self));
}

}  // namespace

DecayScheduler::DecayScheduler(ScoringHandler& handler, ScoringStore& store,
                               kafka::Producer& producer, const runtime::Clock& clock,
                               prometheus::Registry& registry, DecaySchedulerOptions options)
    : handler_(handler),
      store_(store),
      producer_(producer),
      clock_(clock),
      options_(options),
      rescored_(MakeCounter(registry, "leadflow_scoring_decay_rescored_total",
                            "Leads re-scored by the decay scheduler (time passed, no new input).")),
      emitted_(MakeCounter(registry, "leadflow_scoring_decay_emitted_total",
                           "leads.scored events the decay scheduler sent (a score changed).")),
      errors_(MakeCounter(registry, "leadflow_scoring_decay_errors_total",
                          "Decay re-scores or deliveries that failed; retried after the lease.")) {}

void DecayScheduler::Run(const absl::Notification& stop) {
  runtime::RunEvery(options_.interval, stop, [this] {
    absl::StatusOr<DecayPassStats> pass = RunOnce();
    if (!pass.ok()) LogError(error_log_, "decay pass", pass.status());
  });
}

absl::StatusOr<DecayPassStats> DecayScheduler::RunOnce() {
  DecayPassStats stats;
  const absl::Time now = clock_.Now();
  absl::StatusOr<int> reclaimed = store_.Reclaim(now, options_.max_reclaims_per_pass);
  if (!reclaimed.ok()) return reclaimed.status();
  stats.reclaimed = *reclaimed;
  absl::StatusOr<std::vector<ScoringStore::Claimed>> claimed =
      store_.Claim(now, options_.lease, options_.max_claims_per_pass);
  if (!claimed.ok()) return claimed.status();
  stats.claimed = static_cast<int>(claimed->size());

  DeliveryBatch batch(producer_);
  std::vector<std::string> done;
  for (const ScoringStore::Claimed& claim : *claimed) {
    // The cause names the due time it was claimed at, not the pass: a re-claim after a crash
    // replays the same apply and gets the same event back.
    const std::string cause =
        absl::StrCat("decay:", claim.lead_id, ":", absl::ToUnixMillis(claim.due));
    absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs =
        handler_.Rescore(claim.lead_id, cause, now);
    if (!outputs.ok()) {
      ++stats.errors;
      errors_.Increment();
      LogError(error_log_, absl::StrCat("decay re-score of lead ", claim.lead_id),
               outputs.status());
      continue;  // stays claimed: the lease brings it back
    }
    rescored_.Increment();
    for (kafka::OutboundMessage& message : *outputs) {
      batch.Send(claim.lead_id, std::move(message));
      ++stats.emitted;
      emitted_.Increment();
    }
    done.push_back(claim.lead_id);
  }
  if (done.empty()) return stats;
  bool flushed = false;
  const std::vector<std::string> failed = batch.Failures(options_.flush_timeout, &flushed);
  if (!flushed) {
    // Reports still outstanding: keep every claim; the leases bring them back.
    stats.errors += static_cast<int>(done.size());
    errors_.Increment(static_cast<double>(done.size()));
    LogError(error_log_, "decay pass", absl::DeadlineExceededError("events not acknowledged"));
    return stats;
  }
  std::vector<std::string> release;
  for (const std::string& lead : done) {
    if (std::find(failed.begin(), failed.end(), lead) == failed.end()) {
      release.push_back(lead);
    } else {
      ++stats.errors;
      errors_.Increment();
    }
  }
  if (absl::Status s = store_.Release(release); !s.ok()) return s;
  stats.released = static_cast<int>(release.size());
  return stats;
}

Rescorer::Rescorer(ScoringHandler& handler, const ScoringRulesSource& rules, ScoringStore& store,
                   kafka::Producer& producer, const runtime::Clock& clock,
                   prometheus::Registry& registry, RescorerOptions options)
    : handler_(handler),
      rules_(rules),
      store_(store),
      producer_(producer),
      clock_(clock),
      options_(options),
      owner_(options_.owner.empty() ? DefaultOwner(this) : options_.owner),
      rescored_(MakeCounter(registry, "leadflow_scoring_rescore_rescored_total",
                            "Leads re-scored after a rules change.")),
      emitted_(MakeCounter(registry, "leadflow_scoring_rescore_emitted_total",
                           "leads.scored events sent by the re-score after a rules change.")),
      remaining_(prometheus::BuildGauge()
                     .Name("leadflow_scoring_rescore_remaining")
                     .Help("Leads still to re-score for the rules in force (0 when done).")
                     .Register(registry)
                     .Add({})) {}

void Rescorer::Run(const absl::Notification& stop) {
  runtime::RunEvery(options_.interval, stop, [this] {
    absl::StatusOr<RescorePassStats> pass = RunOnce();
    if (!pass.ok()) LogError(error_log_, "re-score pass", pass.status());
  });
}

absl::StatusOr<RescorePassStats> Rescorer::RunOnce() {
  RescorePassStats stats;
  const std::shared_ptr<const CompiledScoringRules> rules = rules_.Current();
  const std::string& fingerprint = rules->fingerprint();
  absl::StatusOr<ScoringStore::RescoreProgress> progress = store_.LoadRescore();
  if (!progress.ok()) return progress.status();
  if (progress->done == fingerprint) {
    stats.finished = true;
    remaining_.Set(0);
    return stats;
  }
  absl::StatusOr<bool> locked = store_.LockRescore(owner_, options_.lock_lease);
  if (!locked.ok()) return locked.status();
  if (!*locked) return stats;  // another replica walks
  stats.locked = true;
  if (progress->fingerprint != fingerprint) {
    // New rules (or a reload during a walk): start over for them.
    progress->fingerprint = fingerprint;
    progress->cursor.clear();
    if (absl::Status s = store_.SaveRescore(*progress); !s.ok()) return s;
  }

  // Token bucket on the injected clock, at most one second's worth of burst.
  const absl::Time now = clock_.Now();
  const double rate = options_.leads_per_second;
  if (refilled_at_ == absl::InfinitePast()) {
    tokens_ = rate * absl::ToDoubleSeconds(options_.interval);
  } else {
    tokens_ += rate * absl::ToDoubleSeconds(now - refilled_at_);
  }
  tokens_ = std::min(tokens_, std::max(rate, 1.0));
  refilled_at_ = now;
  const int budget = static_cast<int>(tokens_);

  if (budget > 0) {
    absl::StatusOr<std::vector<std::string>> leads = store_.LeadsAfter(progress->cursor, budget);
    if (!leads.ok()) return leads.status();
    DeliveryBatch batch(producer_);
    std::vector<std::string> applied;
    for (const std::string& lead : *leads) {
      absl::StatusOr<std::vector<kafka::OutboundMessage>> outputs =
          handler_.Rescore(lead, absl::StrCat("rescore:", lead, ":", fingerprint), now);
      if (!outputs.ok()) {
        LogError(error_log_, absl::StrCat("re-score of lead ", lead), outputs.status());
        break;  // the cursor stays before it
      }
      for (kafka::OutboundMessage& message : *outputs) {
        batch.Send(lead, std::move(message));
        ++stats.emitted;
      }
      applied.push_back(lead);
    }
    bool flushed = true;
    std::vector<std::string> failed;
    if (stats.emitted > 0) failed = batch.Failures(options_.flush_timeout, &flushed);
    // The cursor moves past the leads whose events are all acknowledged, in order; a failure
    // stops it (the same cause replays the same events next pass).
    size_t advanced = 0;
    if (flushed) {
      while (advanced < applied.size() &&
             std::find(failed.begin(), failed.end(), applied[advanced]) == failed.end()) {
        ++advanced;
      }
    }
    if (advanced > 0) {
      progress->cursor = applied[advanced - 1];
      stats.rescored = static_cast<int>(advanced);
      rescored_.Increment(static_cast<double>(advanced));
      emitted_.Increment(stats.emitted);
      tokens_ -= static_cast<double>(advanced);
    }
    if (advanced == leads->size() && leads->size() < static_cast<size_t>(budget)) {
      progress->done = fingerprint;  // walked to the end
      stats.finished = true;
    }
    if (absl::Status s = store_.SaveRescore(*progress); !s.ok()) return s;
  }
  if (stats.finished) {
    stats.remaining = 0;
  } else {
    absl::StatusOr<int64_t> remaining = store_.CountLeadsAfter(progress->cursor);
    if (!remaining.ok()) return remaining.status();
    stats.remaining = *remaining;
  }
  remaining_.Set(static_cast<double>(stats.remaining));
  return stats;
}

}  // namespace leadflow::scoring
