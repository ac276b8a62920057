// The shim's parts, one at a time: ttrpc framing and calls over a real unix socket, reading
// the OCI spec, finding the module inside a rootfs, mount options, the OCI image archive, and
// the task life cycle against a recording host (the containerd test runs the real one).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "e2e/harness.h"
#include "image/oci_image.h"
#include "metrics.pb.h"
#include "shim/function_spec.h"
#include "shim/mounts.h"
#include "shim/task_service.h"
#include "shim/ttrpc.h"
#include "ttrpc.pb.h"

namespace wasmlet::shim {
namespace {

using nlohmann::json;
using testing::TempDir;
namespace fs = std::filesystem;

const std::string kExamples = WASMLET_EXAMPLES;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TtrpcTest, FrameHeaderIsBigEndianLengthStreamTypeFlags) {
  uint8_t raw[kFrameHeaderSize];
  EncodeFrameHeader({0x01020304, 0x0a0b0c0d, 2, 1}, raw);
  const uint8_t expected[] = {1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 1};
  EXPECT_EQ(std::vector<uint8_t>(raw, raw + 10), std::vector<uint8_t>(expected, expected + 10));
  FrameHeader back = DecodeFrameHeader(raw);
  EXPECT_EQ(back.length, 0x01020304u);
  EXPECT_EQ(back.stream_id, 0x0a0b0c0du);
  EXPECT_EQ(back.type, 2);
  EXPECT_EQ(back.flags, 1);
}

class TtrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("t.sock");
    auto fd = ListenUnix(path_);
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    server_.Register("svc", "Echo",
                     [](const std::string& payload, const Metadata& metadata) -> Result<std::string> {
                       auto ns = metadata.find("containerd-namespace-ttrpc");
                       return payload + "|" + (ns == metadata.end() ? "" : ns->second);
                     });
    server_.Register("svc", "Fail", [](const std::string&, const Metadata&) -> Result<std::string> {
      return NotFound("no such thing");
    });
    server_.Register("svc", "Block", [this](const std::string&, const Metadata&) -> Result<std::string> {
      release_.get_future().wait();
      return std::string("released");
    });
    thread_ = std::thread([this, fd = *fd] { server_.Serve(fd); });
  }
  void TearDown() override {
    server_.Stop();
    thread_.join();
  }
  TempDir dir_;
  std::string path_;
  TtrpcServer server_;
  std::promise<void> release_;
  std::thread thread_;
};

TEST_F(TtrpcServerTest, AnswersCallsWithPayloadsMetadataAndStatuses) {
  auto client = TtrpcClient::Connect("unix://" + path_, 1000);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto echo = (*client)->Call("svc", "Echo", "hello", {{"containerd-namespace-ttrpc", "ns1"}}, 1000);
  ASSERT_TRUE(echo.ok()) << echo.status().ToString();
  EXPECT_EQ(*echo, "hello|ns1");

  auto fail = (*client)->Call("svc", "Fail", "", {}, 1000);
  EXPECT_EQ(fail.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fail.status().message(), "no such thing");

  auto unknown = (*client)->Call("svc", "Nope", "", {}, 1000);
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unknown.status().message().find("svc/Nope"), std::string::npos);
}

TEST_F(TtrpcServerTest, ABlockedCallDoesNotHoldUpOthersOnTheSameConnection) {
  auto fd = ConnectUnix(path_, 1000);
  ASSERT_TRUE(fd.ok());
  FrameSocket socket(*fd);
  auto request = [](const std::string& method) {
    ttrpc::Request r;
    r.set_service("svc");
    r.set_method(method);
    r.set_payload("x");
    return r.SerializeAsString();
  };
  ASSERT_TRUE(socket.Write(1, FrameType::kRequest, request("Block")).ok());
  ASSERT_TRUE(socket.Write(3, FrameType::kRequest, request("Echo")).ok());
  FrameHeader header;
  std::string payload;
  ASSERT_TRUE(socket.Read(header, payload, 2000).ok());
  EXPECT_EQ(header.stream_id, 3u) << "the second call is answered while the first waits";
  EXPECT_EQ(header.type, uint8_t(FrameType::kResponse));
  release_.set_value();
  ASSERT_TRUE(socket.Read(header, payload, 2000).ok());
  EXPECT_EQ(header.stream_id, 1u);
  ttrpc::Response response;
  ASSERT_TRUE(response.ParseFromString(payload));
  EXPECT_EQ(response.payload(), "released");
}

TEST_F(TtrpcServerTest, AnOversizedFrameGetsResourceExhaustedAndTheConnectionGoesOn) {
  auto fd = ConnectUnix(path_, 1000);
  ASSERT_TRUE(fd.ok());
  FrameSocket socket(*fd);
  uint8_t header_bytes[kFrameHeaderSize];
  const uint32_t size = kMaxPayload + 1;
  EncodeFrameHeader({size, 5, uint8_t(FrameType::kRequest), 0}, header_bytes);
  std::string big(reinterpret_cast<char*>(header_bytes), kFrameHeaderSize);
  big.append(size, 'x');
  ASSERT_EQ(send(socket.fd(), big.data(), big.size(), MSG_NOSIGNAL), static_cast<ssize_t>(big.size()));
  FrameHeader header;
  std::string payload;
  ASSERT_TRUE(socket.Read(header, payload, 5000).ok());
  EXPECT_EQ(header.stream_id, 5u);
  ttrpc::Response response;
  ASSERT_TRUE(response.ParseFromString(payload));
  EXPECT_EQ(response.status().code(), 8);  // RESOURCE_EXHAUSTED
  ttrpc::Request echo;
  echo.set_service("svc");
  echo.set_method("Echo");
  echo.set_payload("after");
  ASSERT_TRUE(socket.Write(7, FrameType::kRequest, echo.SerializeAsString()).ok());
  ASSERT_TRUE(socket.Read(header, payload, 2000).ok());
  ASSERT_TRUE(response.ParseFromString(payload));
  EXPECT_EQ(response.payload(), "after|");
}

TEST(FunctionSpecTest, ReadsTheModuleAndSettingsAnnotationsBeforeEnvironment) {
  json spec = {
      {"process",
       {{"args", {"fn.wasm", "ignored"}},
        {"cwd", "/app"},
        {"env", {"PATH=/bin", "WASMLET_INSTANCE_NUM=3", "WASMLET_CPU=200", "WASMLET_CONFIGURATION=env"}}}},
      {"annotations", {{"io.wasmlet.configuration", "{\"k\":1}"}, {"io.wasmlet.mem", "16"}}}};
  auto parsed = ParseFunctionSpec(spec.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->sandbox);
  EXPECT_EQ(parsed->wasm, "/app/fn.wasm");
  EXPECT_EQ(parsed->instance_num, 3);
  EXPECT_EQ(parsed->cpu_ms, 200);
  EXPECT_EQ(parsed->mem_mb, 16);
  EXPECT_EQ(parsed->configuration, "{\"k\":1}");
  json item = PluginItem(*parsed, "fn1", "/host/fn.wasm");
  EXPECT_EQ(item["name"], "fn1");
  EXPECT_EQ(item["instance_num"], 3);
  EXPECT_EQ(item["vm_config"]["path"], "/host/fn.wasm");
  EXPECT_EQ(item["vm_config"]["cpu"], 200);
  EXPECT_EQ(item["vm_config"]["mem"], 16);
  EXPECT_EQ(item["configuration"], "{\"k\":1}");
}

TEST(FunctionSpecTest, BadSpecsAreRefusedWithTheReason) {
  EXPECT_NE(ParseFunctionSpec("{").status().message().find("not JSON"), std::string::npos);
  auto no_args = ParseFunctionSpec(json{{"process", {{"args", json::array()}}}}.dump());
  EXPECT_NE(no_args.status().message().find("process.args is empty"), std::string::npos);
  auto bad_num = ParseFunctionSpec(
      json{{"process", {{"args", {"/f.wasm"}}, {"env", {"WASMLET_INSTANCE_NUM=many"}}}}}.dump());
  EXPECT_EQ(bad_num.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_num.status().message().find("instance_num"), std::string::npos);
  EXPECT_NE(bad_num.status().message().find("'many'"), std::string::npos);
  auto wrong_shape = ParseFunctionSpec(json{{"process", {{"args", {"f.wasm"}}, {"cwd", 7}}}}.dump());
  EXPECT_NE(wrong_shape.status().message().find("does not have the OCI runtime spec's shape"),
            std::string::npos);
  EXPECT_EQ(ParseFunctionSpec(json{{"process", "x"}}.dump()).status().code(), StatusCode::kInvalidArgument);
}

TEST(FunctionSpecTest, APodSandboxRunsNoFunction) {
  auto parsed = ParseFunctionSpec(json{{"process", {{"args", {"/pause"}}}},
                                       {"annotations", {{"io.kubernetes.cri.container-type", "sandbox"}}}}
                                      .dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->sandbox);
}

TEST(FunctionSpecTest, TheModuleIsFoundInsideTheRootfsAndNeverOutsideIt) {
  TempDir dir;
  const fs::path rootfs = dir.path() / "rootfs";
  fs::create_directories(rootfs / "app");
  fs::copy_file(kExamples + "/function2.wasm", rootfs / "app" / "f.wasm");
  fs::create_symlink("/app/f.wasm", rootfs / "link.wasm");
  std::ofstream(dir.File("outside.wasm")) << ReadAll(kExamples + "/function2.wasm");
  fs::create_symlink("../outside.wasm", rootfs / "escape.wasm");
  std::ofstream(rootfs / "text.wasm") << "not wasm";

  auto direct = ResolveModule(rootfs.string(), "/app/f.wasm");
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_EQ(*direct, (rootfs / "app" / "f.wasm").string());
  // An absolute symlink is resolved as inside the container.
  auto link = ResolveModule(rootfs.string(), "/link.wasm");
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  EXPECT_EQ(*link, (rootfs / "app" / "f.wasm").string());
  // ".." stops at the container's root: the file next to the rootfs is not reached.
  auto escape = ResolveModule(rootfs.string(), "/escape.wasm");
  EXPECT_FALSE(escape.ok());
  EXPECT_NE(escape.status().message().find("has no file /escape.wasm"), std::string::npos);
  auto text = ResolveModule(rootfs.string(), "/text.wasm");
  EXPECT_NE(text.status().message().find("not a usable WebAssembly module"), std::string::npos);
  auto folder = ResolveModule(rootfs.string(), "/app");
  EXPECT_NE(folder.status().message().find("not a regular file"), std::string::npos);
}

TEST(ShimSettingsTest, ReadsKnownKeysAndRefusesOthersByName) {
  TempDir dir;
  std::ofstream(dir.File("good.json")) << json{
      {"admin_address", "127.0.0.1:1"},
      {"state_dir", "/x"},
      {"start_timeout_ms", 50},
      {"check_interval_ms", 0}}.dump();
  auto good = LoadShimSettings(dir.File("good.json"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->admin_address, "127.0.0.1:1");
  EXPECT_EQ(good->state_dir, "/x");
  EXPECT_EQ(good->start_timeout_ms, 50);
  EXPECT_EQ(good->check_interval_ms, 0);
  EXPECT_EQ(good->daemon_config, "/etc/wasmlet/node.json") << "defaults stay";
  EXPECT_FALSE(good->wasmlet_binary.empty());

  std::ofstream(dir.File("typo.json")) << json{{"admin_adress", "x"}}.dump();
  EXPECT_NE(LoadShimSettings(dir.File("typo.json")).status().message().find("unknown setting 'admin_adress'"),
            std::string::npos);
  std::ofstream(dir.File("type.json")) << json{{"state_dir", 3}}.dump();
  EXPECT_NE(LoadShimSettings(dir.File("type.json")).status().message().find("state_dir must be a string"),
            std::string::npos);
  EXPECT_EQ(LoadShimSettings(dir.File("missing.json")).status().code(), StatusCode::kNotFound);
}

// The shim's view of the node: a real wasmlet daemon, started on demand.
class NodeDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    settings_.admin_address = "127.0.0.1:" + std::to_string(testing::FreePort());
    settings_.wasmlet_binary = WASMLET_BINARY;
    settings_.daemon_config = dir_.File("node.json");
    settings_.daemon_log = dir_.File("wasmlet.log");
    settings_.state_dir = dir_.File("run");
    settings_.start_timeout_ms = 10000;
  }
  void TearDown() override {
    pid_t pid = 0;
    if (std::ifstream in(dir_.File("run/wasmlet.pid")); in >> pid) kill(pid, SIGTERM);
  }
  void WriteNodeConfig(const json& plugins) {
    json config = testing::LayottoConfig(testing::FreePort(), plugins, json::object(),
                                         {{"admin_address", settings_.admin_address}});
    std::ofstream(settings_.daemon_config) << config.dump();
  }
  TempDir dir_;
  ShimSettings settings_;
};

TEST_F(NodeDaemonTest, StartsOneDaemonThenInstallsDescribesAndUninstalls) {
  WriteNodeConfig(json::object());
  NodeDaemon node(settings_);
  ASSERT_TRUE(node.EnsureRunning().ok()) << ReadAll(settings_.daemon_log);
  const std::string first_pid = ReadAll(dir_.File("run/wasmlet.pid"));
  ASSERT_TRUE(node.EnsureRunning().ok());
  EXPECT_EQ(ReadAll(dir_.File("run/wasmlet.pid")), first_pid) << "a running daemon is not started again";

  FunctionSpec spec;
  spec.instance_num = 2;
  auto id = node.Install(PluginItem(spec, "fn2", kExamples + "/function2.wasm"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "id_2");
  EXPECT_EQ(node.Install(PluginItem(spec, "fn2", kExamples + "/function2.wasm")).status().code(),
            StatusCode::kAlreadyExists);
  auto entry = node.Describe("fn2");
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ((*entry)["instances"], 2);
  auto bad = node.Install(PluginItem(spec, "junk", dir_.File("node.json")));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("the wasmlet daemon refused the function"), std::string::npos);
  ASSERT_TRUE(node.Uninstall("fn2").ok());
  EXPECT_EQ(node.Describe("fn2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(node.Uninstall("fn2").ok()) << "gone already is not an error";
}

TEST_F(NodeDaemonTest, ADaemonThatCannotStartIsReportedAtOnceWithItsReason) {
  std::ofstream(settings_.daemon_config) << "{ not json";
  NodeDaemon node(settings_);
  // At once: the daemon's exit is what ends the wait (FAILED_PRECONDITION, "exited: " and its
  // last words), not start_timeout_ms (UNAVAILABLE, "did not become ready ... within").
  Status status = node.EnsureRunning();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.message();
  EXPECT_NE(status.message().find("exited: "), std::string::npos) << status.message();
  EXPECT_EQ(status.message().find("did not become ready"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("node.json"), std::string::npos) << status.message();

  settings_.daemon_config = dir_.File("missing.json");
  Status missing = NodeDaemon(settings_).EnsureRunning();
  EXPECT_NE(missing.message().find("missing.json does not exist"), std::string::npos) << missing.message();
}

TEST(NodeDaemonClientTest, ADaemonThatAcceptsButNeverAnswersFailsTheCallAtItsDeadline) {
  testing::Blackhole blackhole;
  ShimSettings settings;
  settings.admin_address = blackhole.address();
  NodeDaemon daemon(settings);
  // Only the call's own 300 ms deadline can end it (the blackhole never answers nor closes):
  // libcurl's timeout is what says "got no answer within 300 ms".
  auto answer = daemon.Call("GET", "/wasm/list", "", 300);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.status().message().find("got no answer within 300 ms"), std::string::npos)
      << answer.status().message();
}

TEST(MountsTest, OptionsSplitIntoFlagsPropagationAndData) {
  MountFlags f = ParseMountOptions({"rbind", "ro", "nosuid", "rprivate", "lowerdir=/a:/b", "index=off"});
  EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID));
  EXPECT_EQ(f.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(f.data, "lowerdir=/a:/b,index=off");
  EXPECT_EQ(ParseMountOptions({"ro", "rw"}).flags, 0ul) << "a later option wins";
}

// containerd's native snapshotter hands the shim a bind mount: mounted read-only as asked, and
// gone after UnmountAll. Needs root, as the shim does.
TEST(MountsTest, AReadOnlyBindMountIsMountedAndUnmounted) {
  ASSERT_EQ(geteuid(), 0u) << "mounting needs root (run the tests as root, as CI does)";
  TempDir dir;
  fs::create_directories(dir.path() / "layer");
  fs::create_directories(dir.path() / "rootfs");
  std::ofstream(dir.path() / "layer" / "f.wasm") << "bytes";
  const std::string target = (dir.path() / "rootfs").string();
  ASSERT_TRUE(MountAll({{"bind", (dir.path() / "layer").string(), {"rbind", "ro"}}}, target).ok());
  EXPECT_TRUE(IsMountPoint(target));
  EXPECT_EQ(ReadAll(target + "/f.wasm"), "bytes");
  EXPECT_FALSE(std::ofstream(target + "/new")) << "read-only";
  ASSERT_TRUE(UnmountAll(target).ok());
  EXPECT_FALSE(IsMountPoint(target));
  EXPECT_FALSE(fs::exists(target + "/f.wasm"));

  Status bad = MountAll({{"nosuchfs", "none", {}}}, target);
  EXPECT_NE(bad.message().find("cannot mount the container's rootfs (nosuchfs mount of 'none'"),
            std::string::npos)
      << bad.message();
  EXPECT_FALSE(IsMountPoint(target));
}

struct TarMember {
  std::string content;
  unsigned mode = 0;
};

// Reads a tar archive with libarchive, as a container runtime would: {name: member}.
std::map<std::string, TarMember> Untar(const std::string& tar) {
  std::map<std::string, TarMember> members;
  std::unique_ptr<archive, int (*)(archive*)> reader(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(reader.get());
  EXPECT_EQ(archive_read_open_memory(reader.get(), tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(reader.get(), &entry) == ARCHIVE_OK) {
    TarMember member;
    member.mode = archive_entry_perm(entry);
    member.content.resize(static_cast<size_t>(archive_entry_size(entry)));
    if (!member.content.empty()) {
      EXPECT_EQ(archive_read_data(reader.get(), member.content.data(), member.content.size()),
                static_cast<la_ssize_t>(member.content.size()));
    }
    members[archive_entry_pathname(entry)] = std::move(member);
  }
  return members;
}

TEST(ImageTest, PackWritesAnOciLayoutWhoseDigestsMatch) {
  image::PackOptions options;
  const std::string wasm = ReadAll(kExamples + "/function1.wasm");
  options.module.assign(wasm.begin(), wasm.end());
  options.module_file = "function1.wasm";
  options.name = "example.com/function1";
  options.env = {"WASMLET_INSTANCE_NUM=2"};
  options.architecture = "amd64";
  std::ostringstream out;
  ASSERT_TRUE(image::WriteOciArchive(options, out).ok());
  auto files = Untar(out.str());
  ASSERT_TRUE(files.count("oci-layout") && files.count("index.json"));
  json index = json::parse(files["index.json"].content);
  const json& descriptor = index["manifests"][0];
  EXPECT_EQ(descriptor["annotations"]["io.containerd.image.name"], "example.com/function1:latest");
  auto blob = [&](const json& d) {
    const std::string digest = d["digest"];
    const std::string& content = files.at("blobs/sha256/" + digest.substr(7)).content;
    EXPECT_EQ(digest, "sha256:" + image::Sha256Hex(content));
    EXPECT_EQ(d["size"], content.size());
    return content;
  };
  json manifest = json::parse(blob(descriptor));
  json config = json::parse(blob(manifest["config"]));
  EXPECT_EQ(config["config"]["Entrypoint"], json({"/function1.wasm"}));
  EXPECT_EQ(config["config"]["Env"], json({"WASMLET_INSTANCE_NUM=2"}));
  EXPECT_EQ(config["architecture"], "amd64");
  const std::string layer = blob(manifest["layers"][0]);
  EXPECT_EQ(config["rootfs"]["diff_ids"][0], "sha256:" + image::Sha256Hex(layer));
  EXPECT_EQ(Untar(layer).at("function1.wasm").content, wasm);
  EXPECT_EQ(Untar(layer).at("function1.wasm").mode, 0644u) << "the module's mode";

  std::ostringstream again;
  ASSERT_TRUE(image::WriteOciArchive(options, again).ok());
  EXPECT_EQ(again.str(), out.str()) << "the same input packs to the same bytes";
  options.mode = 0755;
  std::ostringstream executable;
  ASSERT_TRUE(image::WriteOciArchive(options, executable).ok());
  files = Untar(executable.str());
  const json exe_manifest = json::parse(blob(json::parse(files["index.json"].content)["manifests"][0]));
  EXPECT_EQ(Untar(blob(exe_manifest["layers"][0])).at("function1.wasm").mode, 0755u);
}

// Records what the task asked of the node.
class RecordingHost : public FunctionHost {
 public:
  Result<std::string> Install(const json& item) override {
    calls.push_back("install " + item["name"].get<std::string>());
    if (!install_error.ok()) return install_error;
    return std::string("id_7");
  }
  Status Uninstall(const std::string& name) override {
    calls.push_back("uninstall " + name);
    return Status::Ok();
  }
  Result<json> Describe(const std::string& name) override {
    if (!describe_error.ok()) return describe_error;
    return json{{"name", name}, {"instances", 2}, {"memory_bytes", 131072}, {"memory_limit_bytes", 1 << 21}};
  }
  std::vector<std::string> calls;
  Status install_error;
  Status describe_error;
};

class RecordingEvents : public EventSink {
 public:
  void Publish(const std::string& topic, const google::protobuf::Message& event) override {
    topics.push_back(topic + " " + event.GetTypeName());
  }
  std::vector<std::string> topics;
};

class TaskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "rootfs");
    fs::copy_file(kExamples + "/function2.wasm", dir_.path() / "rootfs" / "f.wasm");
    std::ofstream(dir_.File("config.json")) << json{{"process", {{"args", {"/f.wasm"}}}}}.dump();
  }
  task::CreateTaskRequest CreateRequest() {
    task::CreateTaskRequest r;
    r.set_id("fn");
    r.set_bundle(dir_.path().string());
    return r;
  }
  template <typename T>
  T Named() {
    T r;
    r.set_id("fn");
    return r;
  }
  TempDir dir_;
  RecordingHost host_;
  RecordingEvents events_;
  TaskService service_{host_, events_, 4242};
};

TEST_F(TaskServiceTest, ALifeCycleInstallsThenUninstallsAndPublishesEachStep) {
  auto created = service_.Create(CreateRequest());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->pid(), 4242u);
  EXPECT_EQ(service_.State(Named<task::StateRequest>())->status(), task::CREATED);
  ASSERT_TRUE(service_.Start(Named<task::StartRequest>()).ok());
  EXPECT_EQ(service_.route_id(), "id_7");
  EXPECT_EQ(service_.State(Named<task::StateRequest>())->status(), task::RUNNING);
  EXPECT_EQ(service_.Delete(Named<task::DeleteRequest>()).status().code(), StatusCode::kFailedPrecondition);

  auto waited = std::async(std::launch::async, [&] { return service_.Wait(Named<task::WaitRequest>()); });
  EXPECT_EQ(waited.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout) << "Wait waits";
  auto kill = Named<task::KillRequest>();
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(service_.Kill(kill).ok());
  auto exit = waited.get();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_status(), 137u);
  EXPECT_EQ(service_.Kill(kill).code(), StatusCode::kNotFound) << "already finished";

  task::ShutdownRequest shutdown;
  EXPECT_FALSE(service_.Shutdown(shutdown)) << "not before the task is deleted";
  auto deleted = service_.Delete(Named<task::DeleteRequest>());
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->exit_status(), 137u);
  EXPECT_TRUE(service_.Shutdown(shutdown));
  EXPECT_EQ(service_.State(Named<task::StateRequest>()).status().code(), StatusCode::kNotFound);

  EXPECT_EQ(host_.calls, (std::vector<std::string>{"install fn", "uninstall fn"}));
  EXPECT_EQ(events_.topics,
            (std::vector<std::string>{
                "/tasks/create containerd.events.TaskCreate", "/tasks/start containerd.events.TaskStart",
                "/tasks/exit containerd.events.TaskExit", "/tasks/delete containerd.events.TaskDelete"}));
}

TEST_F(TaskServiceTest, SigtermStopsCleanlyAndExecsDoNotExist) {
  ASSERT_TRUE(service_.Create(CreateRequest()).ok());
  ASSERT_TRUE(service_.Start(Named<task::StartRequest>()).ok());
  auto running = service_.Stats(Named<task::StatsRequest>());
  ASSERT_TRUE(running.ok());
  io::containerd::cgroups::v1::Metrics metrics;
  ASSERT_TRUE(metrics.ParseFromString(running->stats().value()));
  EXPECT_EQ(metrics.pids().current(), 2u);
  EXPECT_EQ(metrics.memory().usage().usage(), 131072u);
  EXPECT_EQ(metrics.memory().usage().limit(), 1u << 21);
  auto state = Named<task::StateRequest>();
  state.set_exec_id("sh");
  EXPECT_EQ(service_.State(state).status().code(), StatusCode::kNotFound);
  auto kill = Named<task::KillRequest>();
  kill.set_signal(SIGTERM);
  ASSERT_TRUE(service_.Kill(kill).ok());
  EXPECT_EQ(service_.Wait(Named<task::WaitRequest>())->exit_status(), 0u);
  auto stats = service_.Stats(Named<task::StatsRequest>());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stats().type_url(), "io.containerd.cgroups.v1.Metrics");
  EXPECT_EQ(stats->stats().value().size(), 0u) << "a stopped function uses nothing";
}

TEST_F(TaskServiceTest, AFailedInstallFailsStartAndEndsTheTask) {
  host_.install_error = InvalidArgument("the wasmlet daemon refused the function: it traps at start");
  ASSERT_TRUE(service_.Create(CreateRequest()).ok());
  auto started = service_.Start(Named<task::StartRequest>());
  EXPECT_EQ(started.status().message(), "the wasmlet daemon refused the function: it traps at start");
  EXPECT_EQ(service_.State(Named<task::StateRequest>())->status(), task::STOPPED);
  EXPECT_EQ(service_.Wait(Named<task::WaitRequest>())->exit_status(), 1u);
  EXPECT_TRUE(service_.Delete(Named<task::DeleteRequest>()).ok());
}

TEST_F(TaskServiceTest, AFunctionTheDaemonLostIsInstalledAgainWhileTheTaskRuns) {
  ASSERT_TRUE(service_.Reconcile().ok()) << "no task: nothing to do";
  ASSERT_TRUE(service_.Create(CreateRequest()).ok());
  ASSERT_TRUE(service_.Start(Named<task::StartRequest>()).ok());
  ASSERT_TRUE(service_.Reconcile().ok());
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"install fn"})) << "still served: nothing to do";
  host_.describe_error = NotFound("the wasmlet daemon runs no function named fn");
  ASSERT_TRUE(service_.Reconcile().ok());
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"install fn", "install fn"}));
  host_.describe_error = Unavailable("the wasmlet daemon at 127.0.0.1:1 does not answer");
  ASSERT_TRUE(service_.Reconcile().ok());
  EXPECT_EQ(host_.calls.size(), 3u) << "a daemon that is gone: install starts it and installs";
  auto kill = Named<task::KillRequest>();
  kill.set_signal(SIGTERM);
  ASSERT_TRUE(service_.Kill(kill).ok());
  ASSERT_TRUE(service_.Reconcile().ok());
  EXPECT_EQ(host_.calls.back(), "uninstall fn") << "a stopped task is not brought back";
}

TEST_F(TaskServiceTest, AnIdTakenOnTheNodeIsExplained) {
  host_.install_error = AlreadyExists("a function named 'fn' is already installed");
  ASSERT_TRUE(service_.Create(CreateRequest()).ok());
  auto started = service_.Start(Named<task::StartRequest>());
  EXPECT_EQ(started.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(started.status().message().find("give this container another id"), std::string::npos);
}

TEST_F(TaskServiceTest, CreateRefusesAMissingModuleAndASecondTask) {
  std::ofstream(dir_.File("config.json")) << json{{"process", {{"args", {"/missing.wasm"}}}}}.dump();
  auto missing = service_.Create(CreateRequest());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("has no file /missing.wasm"), std::string::npos);
  EXPECT_TRUE(events_.topics.empty());
  std::ofstream(dir_.File("config.json")) << json{{"process", {{"args", {"/f.wasm"}}}}}.dump();
  ASSERT_TRUE(service_.Create(CreateRequest()).ok());
  EXPECT_EQ(service_.Create(CreateRequest()).status().code(), StatusCode::kAlreadyExists);
}

// The binary as containerd runs it: `start` from a process with only stdio open (so the
// listening socket is fd 3 already), then ttrpc calls on the address it printed.
TEST(ShimBinaryTest, StartPrintsAnAddressWhoseShimAnswersAndShutsDown) {
  TempDir dir;
  fs::create_directories(dir.path() / "bundle");
  std::ofstream(dir.File("shim.json")) << json{{"state_dir", dir.File("run")}}.dump();
  const std::string command =
      "cd " + dir.File("bundle") + " && WASMLET_SHIM_CONFIG=" + dir.File("shim.json") +
      " TTRPC_ADDRESS=" + dir.File("none.sock") + " " + WASMLET_SHIM_BINARY +
      " -namespace ns1 -address /x/containerd.sock -publish-binary /x/containerd -id t1 "
      "start </dev/null 2>&1";
  auto [code, out] = testing::RunShell(command);
  ASSERT_EQ(code, 0) << out;
  ASSERT_EQ(out.rfind("unix://" + dir.File("run/s/"), 0), 0u) << out;
  const std::string address = out.substr(0, out.find('\n'));
  EXPECT_EQ(ReadAll(dir.File("bundle/address")), address);

  auto client = TtrpcClient::Connect(address, 2000);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  task::ConnectRequest connect;
  connect.set_id("t1");
  auto answer = (*client)->Call("containerd.task.v2.Task", "Connect", connect.SerializeAsString(), {}, 2000);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  task::ConnectResponse response;
  ASSERT_TRUE(response.ParseFromString(*answer));
  EXPECT_EQ(std::to_string(response.shim_pid()), ReadAll(dir.File("bundle/shim.pid")));
  EXPECT_EQ(response.version(), WASMLET_VERSION);

  auto state =
      (*client)->Call("containerd.task.v2.Task", "State", task::StateRequest().SerializeAsString(), {}, 2000);
  EXPECT_EQ(state.status().code(), StatusCode::kNotFound);
  auto pause = (*client)->Call("containerd.task.v2.Task", "Pause", "", {}, 2000);
  EXPECT_EQ(pause.status().code(), StatusCode::kUnimplemented);

  // No task: Shutdown ends the shim, which removes its socket.
  auto shutdown = (*client)->Call("containerd.task.v2.Task", "Shutdown", "", {}, 2000);
  ASSERT_TRUE(shutdown.ok()) << shutdown.status().ToString();
  for (int i = 0; i < 200 && fs::exists(address.substr(7)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(fs::exists(address.substr(7)));
  const pid_t pid = std::stoi(ReadAll(dir.File("bundle/shim.pid")));
  // Gone, or a zombie waiting for init to reap it.
  auto running = [pid] {
    const std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
    return !stat.empty() && stat.substr(stat.rfind(')') + 2, 1) != "Z";
  };
  for (int i = 0; i < 200 && running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(running()) << "the shim process is gone";
}

}  // namespace
}  // namespace wasmlet::shim
