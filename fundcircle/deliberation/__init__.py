"""Deliberation: threaded comments, questions to applicants and their answers, moderation, and the
member-facing side of conflicts of interest.

Decisions (details in the modules named):

* Reading is public for submitted proposals; members' names are shown to members only, everyone
  else sees "Member A", "Member B" … and the applicant's name (``permissions``, ``queries.author_labels``).
* Posting: circle members and the applicant, on a submitted proposal, from the call opening until
  voting closes; questions by members, answers by the applicant, one visible answer per question
  (``permissions.OPEN_PHASES``).
* No edits and no deletions; a facilitator hides a comment once, with a public reason, recorded in
  the audit log; the database refuses everything else (migration 0004).
* Notifications: one message per person per event, never to the person who acted (``operations``).
* Conflicts: declared through ``voting.operations.declare_conflict`` while the round is open;
  the proposal page shows the member's own conflict, automatic recusals, and public counts
  without names; facilitators see the full list for a round.
"""
