// RuntimeService's calls on the components only applications use: files and output bindings
// (server/api/app_components.h).
#include <cstdio>

#include "common/text.h"
#include "server/api/runtime_service.h"

namespace wasmlet::server {

// ---- files

namespace {

// The pieces GetFile sends: well under the default message limit, large enough that a big
// file is few messages.
constexpr size_t kFileChunkBytes = 64 << 10;
constexpr int kDefaultListPage = 100;
constexpr int kMaxListPage = 1000;

}  // namespace

grpc::Status RuntimeService::GetFile(grpc::ServerContext* context, const runtime_v1::GetFileRequest* request,
                                     grpc::ServerWriter<runtime_v1::GetFileResponse>* writer) {
  return Serve(context, "GetFile", [&]() -> Status {
    auto store = apps_->files.Find(request->store_name(), "file store", "store_name");
    if (!store.ok()) return store.status();
    bool gone = false;
    runtime_v1::GetFileResponse piece;
    Status read = (*store)->Get(request->name(), kFileChunkBytes, [&](std::string_view data) {
      piece.set_data(data.data(), data.size());
      gone = context->IsCancelled() || !writer->Write(piece);
      return !gone;
    });
    if (!read.ok()) return read;
    if (gone) return Status(StatusCode::kUnavailable, "the caller went away during GetFile");
    return Status::Ok();
  });
}

grpc::Status RuntimeService::PutFile(grpc::ServerContext* context,
                                     grpc::ServerReader<runtime_v1::PutFileRequest>* reader,
                                     google::protobuf::Empty* /*response*/) {
  return Serve(context, "PutFile", [&]() -> Status {
    runtime_v1::PutFileRequest piece;
    if (!reader->Read(&piece))
      return InvalidArgument("PutFile got no message: the first must name store_name and name");
    const std::string store_name = piece.store_name();
    const std::string name = piece.name();
    auto store = apps_->files.Find(store_name, "file store", "store_name");
    if (!store.ok()) return store.status();
    auto writer = (*store)->Put(name);
    if (!writer.ok()) return writer.status();
    do {
      if ((!piece.store_name().empty() && piece.store_name() != store_name) ||
          (!piece.name().empty() && piece.name() != name))
        return InvalidArgument("a later PutFile message names another file (" + Printable(piece.store_name(), 64) +
                               "/" + Printable(piece.name(), 128) + ") than the first (" +
                               Printable(store_name, 64) + "/" + Printable(name, 128) + "): nothing was written");
      WASMLET_RETURN_IF_ERROR((*writer)->Append(piece.data()));
    } while (reader->Read(&piece));
    if (context->IsCancelled())
      return Status(StatusCode::kUnavailable, "the caller went away during PutFile: nothing was written");
    return (*writer)->Commit();
  });
}

grpc::Status RuntimeService::ListFile(grpc::ServerContext* context, const runtime_v1::ListFileRequest* request,
                                      runtime_v1::ListFileResp* response) {
  return Serve(context, "ListFile", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    if (request->page_size() < 0 || request->page_size() > kMaxListPage)
      return InvalidArgument("page_size " + std::to_string(request->page_size()) + " is not within 0.." +
                             std::to_string(kMaxListPage) + " (0: " + std::to_string(kDefaultListPage) + ")");
    const size_t page = request->page_size() == 0 ? kDefaultListPage : static_cast<size_t>(request->page_size());
    auto listing = (*store)->List(request->request().name(), page, request->marker());
    if (!listing.ok()) return listing.status();
    for (const components::FileInfo& file : listing->files) {
      runtime_v1::FileInfo* info = response->add_files();
      info->set_file_name(file.name);
      info->set_size(static_cast<int64_t>(file.size));
      info->set_last_modified(IsoTime(file.modified));
      (*info->mutable_metadata())["type"] = file.directory ? "directory" : "file";
    }
    response->set_marker(listing->marker);
    response->set_is_truncated(listing->truncated);
    return Status::Ok();
  });
}

grpc::Status RuntimeService::DelFile(grpc::ServerContext* context, const runtime_v1::DelFileRequest* request,
                                     google::protobuf::Empty* /*response*/) {
  return Serve(context, "DelFile", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    return (*store)->Delete(request->request().name());
  });
}

grpc::Status RuntimeService::GetFileMeta(grpc::ServerContext* context, const runtime_v1::GetFileMetaRequest* request,
                                         runtime_v1::GetFileMetaResponse* response) {
  return Serve(context, "GetFileMeta", [&]() -> Status {
    auto store = apps_->files.Find(request->request().store_name(), "file store", "request.store_name");
    if (!store.ok()) return store.status();
    auto info = (*store)->Stat(request->request().name());
    if (!info.ok()) return info.status();
    response->set_size(static_cast<int64_t>(info->size));
    response->set_last_modified(IsoTime(info->modified));
    auto& metadata = *response->mutable_response()->mutable_metadata();
    metadata["type"].add_value(info->directory ? "directory" : "file");
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info->mode);
    metadata["mode"].add_value(mode);
    return Status::Ok();
  });
}

// ---- bindings

grpc::Status RuntimeService::InvokeBinding(grpc::ServerContext* context,
                                           const runtime_v1::InvokeBindingRequest* request,
                                           runtime_v1::InvokeBindingResponse* response) {
  return Serve(context, "InvokeBinding", [&]() -> Status {
    auto binding = apps_->bindings.Find(request->name(), "binding", "name");
    if (!binding.ok()) return binding.status();
    components::BindingRequest call;
    call.operation = request->operation();
    call.data = request->data();
    for (const auto& [key, value] : request->metadata()) call.metadata[key] = value;
    auto answer = (*binding)->Invoke(call);
    if (!answer.ok()) return answer.status();
    response->set_data(std::move(answer->data));
    for (auto& [key, value] : answer->metadata) (*response->mutable_metadata())[key] = std::move(value);
    return Status::Ok();
  });
}


}  // namespace wasmlet::server
