package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// How the service says which records it refused. An Export that refuses every record fails with InvalidArgument;
// one that stores some answers OK with an OTLP partial success and puts the same status in RejectionsTrailer.
// Either way the status carries, beside its human-readable message:
//   - an ErrorInfo, reason ReasonRecordsRejected, domain Domain, metadata MetadataRejected: how many records were
//     refused in all;
//   - a BadRequest with one field violation per refused record, up to MaxRejectionsReported: the field is
//     RecordField(i), the description the Rejection's Reason.
const (
	Domain                = "github.com/runtrust/runtrust"
	ReasonRecordsRejected = "LOG_RECORDS_REJECTED"
	MetadataRejected      = "rejected"
	// MaxRejectionsReported bounds how many refused records one answer names; the count covers the rest.
	MaxRejectionsReported = 5
)

// Reasons of an ErrorInfo on an InvalidArgument that refuses a request whole, before looking at its records.
const (
	ReasonRequestUndecodable    = "REQUEST_UNDECODABLE"     // the bytes are not an OTLP ExportLogsServiceRequest
	ReasonIdempotencyKeyInvalid = "IDEMPOTENCY_KEY_INVALID" // IdempotencyKeyHeader's value fails CheckIdempotencyKey
)

// RefusedStatus is the InvalidArgument status of a request refused whole for reason, msg saying why for people.
func RefusedStatus(reason, msg string) *status.Status {
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain})
	if err != nil {
		return status.New(codes.InvalidArgument, msg)
	}
	return st
}

// ReasonOf is the reason of the service's ErrorInfo in st (ReasonRecordsRejected, ReasonRequestUndecodable, …),
// or "" when st carries none.
func ReasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info.GetReason()
		}
	}
	return ""
}

// Rejection is one log record the service refused.
type Rejection struct {
	// Record is its number in the request: log records counted in order across resource and scope logs, from 0.
	Record int
	// Reason is what is wrong, without the record's number, so that records refused alike have the same reason
	// (the exporter logs each reason once): `("runtrust.k8s.pod"): k8s.pod.uid is missing`.
	Reason string
}

// Rejections is what a status says about the records the service refused.
type Rejections struct {
	Total   int         // records refused in all
	Records []Rejection // the first MaxRejectionsReported of them
}

// recordField is the BadRequest field of a refused record.
const recordField = "log_records"

// RecordField is the BadRequest field violation's field for record i: "log_records[i]".
func RecordField(i int) string { return recordField + "[" + strconv.Itoa(i) + "]" }

// parseRecordField is the record number in a RecordField, or false.
func parseRecordField(f string) (int, bool) {
	s, ok := strings.CutPrefix(f, recordField+"[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// Message words r for people: "3 log record(s) rejected: record 0 <reason>; record 7 <reason>; …".
func (r Rejections) Message() string {
	if r.Total == 0 {
		return ""
	}
	parts := make([]string, 0, len(r.Records)+1)
	for _, rj := range r.Records {
		parts = append(parts, rj.String())
	}
	if r.Total > len(r.Records) {
		parts = append(parts, "…")
	}
	return fmt.Sprintf("%d log record(s) rejected: %s", r.Total, strings.Join(parts, "; "))
}

// RejectedStatus is the InvalidArgument status that says r: its Message for people, the details for programs.
func RejectedStatus(r Rejections) *status.Status {
	msg := r.Message()
	br := &errdetails.BadRequest{}
	for _, rj := range r.Records {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: RecordField(rj.Record), Description: rj.Reason})
	}
	info := &errdetails.ErrorInfo{Reason: ReasonRecordsRejected, Domain: Domain,
		Metadata: map[string]string{MetadataRejected: strconv.Itoa(r.Total)}}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(info, br)
	if err != nil { // only when a detail cannot be marshalled, which these always can
		return status.New(codes.InvalidArgument, msg)
	}
	return st
}

// RejectionsOf reads the rejections a status carries; false when it carries none (not from this service, or
// not about records).
func RejectionsOf(st *status.Status) (Rejections, bool) {
	var r Rejections
	found := false
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() != Domain || d.GetReason() != ReasonRecordsRejected {
				continue
			}
			if n, err := strconv.Atoi(d.GetMetadata()[MetadataRejected]); err == nil && n >= 0 {
				r.Total, found = n, true
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				if i, ok := parseRecordField(v.GetField()); ok {
					r.Records = append(r.Records, Rejection{Record: i, Reason: v.GetDescription()})
				}
			}
		}
	}
	if !found {
		return Rejections{}, false
	}
	return r, true
}

// PartialSuccessTrailer is the trailer metadata that carries st beside an OK answer.
func PartialSuccessTrailer(st *status.Status) metadata.MD {
	b, err := proto.Marshal(st.Proto())
	if err != nil {
		return nil
	}
	return metadata.Pairs(RejectionsTrailer, string(b))
}

// StatusFromTrailer is the status PartialSuccessTrailer put in md, or nil.
func StatusFromTrailer(md metadata.MD) *status.Status {
	vals := md.Get(RejectionsTrailer)
	if len(vals) == 0 {
		return nil
	}
	var p spb.Status
	if err := proto.Unmarshal([]byte(vals[0]), &p); err != nil {
		return nil
	}
	return status.FromProto(&p)
}

// RetryStatus is a status of code that asks the client to wait at least delay before it tries again.
func RetryStatus(code codes.Code, msg string, delay time.Duration) *status.Status {
	st, err := status.New(code, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		return status.New(code, msg)
	}
	return st
}

// RetryAfter is how long st asks the client to wait before it tries again; 0 when it does not say.
func RetryAfter(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// String is the rejection as the service's message words it: "record 3 <reason>".
func (r Rejection) String() string { return fmt.Sprintf("record %d %s", r.Record, r.Reason) }
