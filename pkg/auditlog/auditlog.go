// Package auditlog defines the entries of cutover's hash-chained audit log
// and how to verify a chain. The controller writes the log
// (controlplane/audit); cutoverctl verifies what the controller serves with
// the same code, so a controller cannot lie about a chain it hands out.
// Nothing here does I/O.
//
// Each entry carries the hash of the entry before it (PrevHash; "" for the
// first) and its own Hash. Hash is the lowercase hex SHA-256 of the
// following byte string, so that anyone can re-implement it:
//
//	field("cutover-audit-v1")
//	field(decimal(Seq))
//	field(Time in UTC, formatted as Go's RFC 3339 with nanoseconds,
//	      "2006-01-02T15:04:05.999999999Z07:00": trailing zeros of the
//	      fraction dropped, no fraction when it is zero, "Z" for the zone)
//	field(Subject)
//	field(decimal(len(Roles)))  then field(role) for each role, in order
//	field(Method)
//	field(Environment)
//	field(Deployment)
//	field(Summary)
//	field(Code)
//	field(Reason)
//	field(PrevHash)
//
// where field(s) is the length of s in bytes as an unsigned 64-bit
// big-endian integer followed by the bytes of s, and decimal(n) is n in
// base 10 ASCII without leading zeros ("0" for zero). Every field is
// length-prefixed, so no two different entries encode to the same bytes.
// Hash itself is not part of the input.
//
// A list verifies (Verify) when it is the whole log from entry 1: entries
// numbered 1, 2, 3… without gaps, each PrevHash equal to the Hash of the
// entry before, and each Hash equal to ComputeHash of its entry. A list
// that verifies can still have lost entries at its end: compare its last
// hash with one recorded earlier to detect that.
package auditlog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// encodingTag opens the hashed encoding; a new encoding gets a new tag.
const encodingTag = "cutover-audit-v1"

// Entry is one entry of the audit log.
type Entry struct {
	// Seq numbers entries from 1, without gaps.
	Seq uint64
	// Time is when the entry was appended.
	Time time.Time
	// Subject is who acted: a token's subject, "agent:<env>/<name>", or
	// "controller".
	Subject string
	// Roles are the roles the subject acted with.
	Roles []string
	// Method is the gRPC method, or the controller's own action.
	Method string
	// Environment and Deployment are what the action concerned, if any.
	Environment, Deployment string
	// Summary describes the request, without secrets.
	Summary string
	// Code is the result: a gRPC code name ("OK", "PERMISSION_DENIED", …).
	Code string
	// Reason is the reason given by the caller or the controller, if any.
	Reason string
	// PrevHash is the Hash of the entry before ("" for entry 1).
	PrevHash string
	// Hash is ComputeHash of this entry, lowercase hex.
	Hash string
}

// ComputeHash returns the lowercase hex SHA-256 of e's encoding (see the
// package comment): every field but Hash.
func (e Entry) ComputeHash() string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(encodingTag)
	field(strconv.FormatUint(e.Seq, 10))
	field(e.Time.UTC().Format(time.RFC3339Nano))
	field(e.Subject)
	field(strconv.Itoa(len(e.Roles)))
	for _, r := range e.Roles {
		field(r)
	}
	for _, s := range []string{e.Method, e.Environment, e.Deployment, e.Summary, e.Code, e.Reason, e.PrevHash} {
		field(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BrokenError says which entry of a list is the first that does not
// verify, and why. It wraps errkind.DataLoss.
type BrokenError struct {
	// Seq is the number of the first entry that does not verify (for a
	// missing entry, the number it should have had).
	Seq uint64
	// Reason says what is wrong with it.
	Reason string
}

// Error returns "entry <Seq>: <Reason>".
func (e *BrokenError) Error() string { return fmt.Sprintf("entry %d: %s", e.Seq, e.Reason) }

// Unwrap returns errkind.DataLoss: a broken chain is damaged or altered data.
func (e *BrokenError) Unwrap() error { return errkind.DataLoss }

// Verify checks that entries are the whole log from entry 1, in order: seq
// continuity, each PrevHash equal to the Hash of the entry before ("" for
// entry 1), each Hash equal to ComputeHash. It returns nil, or a
// *BrokenError naming the first entry that does not match. An empty list
// verifies.
func Verify(entries []Entry) error {
	prevHash := ""
	for i, e := range entries {
		want := uint64(i) + 1
		switch {
		case e.Seq == want:
		case e.Seq > want && i == 0:
			return &BrokenError{Seq: want, Reason: fmt.Sprintf("missing (the list starts at entry %d)", e.Seq)}
		case e.Seq > want:
			return &BrokenError{Seq: want, Reason: fmt.Sprintf("missing (the list goes from entry %d to entry %d)", want-1, e.Seq)}
		case e.Seq == 0:
			return &BrokenError{Seq: 0, Reason: fmt.Sprintf("position %d holds an entry numbered 0; entries are numbered from 1", i+1)}
		default:
			return &BrokenError{Seq: e.Seq, Reason: fmt.Sprintf("out of order: it comes after entry %d", want-1)}
		}
		if e.Hash != e.ComputeHash() {
			return &BrokenError{Seq: e.Seq, Reason: "its hash does not match its content (changed after it was written?)"}
		}
		if e.PrevHash != prevHash {
			if want == 1 {
				return &BrokenError{Seq: e.Seq, Reason: "prev_hash is not empty, but this is the first entry"}
			}
			return &BrokenError{Seq: e.Seq, Reason: fmt.Sprintf("prev_hash does not match entry %d's hash", want-1)}
		}
		prevHash = e.Hash
	}
	return nil
}
