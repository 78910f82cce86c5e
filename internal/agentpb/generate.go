// Package agentpb holds the agent's protobuf definitions and the code
// generated from them. Run `make generate` after editing agent.proto.
package agentpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative agent.proto
