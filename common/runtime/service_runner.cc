#include "common/runtime/service_runner.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc/server.h"
#include "common/metrics/metrics.h"
#include "spdlog/spdlog.h"

namespace leadflow::runtime {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void RequestStop() {
  // Delivered to the process; the runner's sigwait() picks it up.
  kill(getpid(), SIGTERM);
}

absl::Status RunService(ServiceParts parts) {
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!parts.metrics_addr.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> m =
        metrics::MetricsServer::Start(parts.metrics_addr, parts.registry);
    if (!m.ok()) return m.status();
    metrics_server = *std::move(m);
  }
  absl::StatusOr<std::unique_ptr<grpc_util::GrpcServer>> server =
      grpc_util::GrpcServer::Start(parts.grpc_addr, parts.grpc_services, parts.grpc_options);
  if (!server.ok()) return server.status();
  const grpc_util::ServerTlsOptions& tls = parts.grpc_options.tls;
  spdlog::info("{} serving gRPC on port {} ({})", parts.service, (*server)->port(),
               !tls.enabled()               ? "plaintext"
               : tls.client_ca_file.empty() ? "TLS"
                                            : "mutual TLS");
  if ((*server)->health_port() != 0) {
    spdlog::info("{} serving plaintext gRPC health on port {}", parts.service,
                 (*server)->health_port());
  }

  absl::Notification stop;
  std::atomic<bool> loop_failed{false};
  std::vector<std::thread> threads;
  if (parts.loop != nullptr) {
    threads.emplace_back([&] {
      absl::Status s = parts.loop->Run();
      if (!s.ok()) {
        spdlog::critical("consumer loop failed: {}", s.ToString());
        loop_failed = true;
        RequestStop();
      }
    });
  }
  for (BackgroundTask& task : parts.tasks) {
    threads.emplace_back([&stop, &task] { task(stop); });
  }
  // Health and rule reloads.
  threads.emplace_back([&] {
    absl::Time next_reload = absl::Now() + parts.reload_interval;
    while (!stop.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      const bool deps = !parts.dependencies_ok || parts.dependencies_ok();
      const bool loop_ok = parts.loop == nullptr || parts.loop->Serving();
      (*server)->SetServing(deps && loop_ok);
      if (absl::Now() >= next_reload) {
        for (config::ReloadableBase* r : parts.reloadables) (void)r->ReloadIfChanged();
        next_reload = absl::Now() + parts.reload_interval;
      }
    }
  });
  // First health verdict without waiting a second.
  (*server)->SetServing(!parts.dependencies_ok || parts.dependencies_ok());

  sigset_t set = TerminationSignals();
  int signal_number = 0;
  sigwait(&set, &signal_number);
  spdlog::info("{} received signal {}: shutting down", parts.service, signal_number);

  (*server)->SetServing(false);
  stop.Notify();
  if (parts.loop != nullptr) parts.loop->Stop();
  for (std::thread& t : threads) t.join();
  (*server)->Shutdown(parts.shutdown_grace);
  spdlog::info("{} stopped", parts.service);
  spdlog::default_logger()->flush();
  if (loop_failed) return absl::InternalError("consumer loop failed");
  return absl::OkStatus();
}

}  // namespace leadflow::runtime
