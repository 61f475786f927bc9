# Part of invenio-stats-dashboard (MIT License).
"""The counting script of usage deltas: every figure of a day in one pass over its events.

A ``scripted_metric`` under a per-day ``date_histogram``. For each event it
adds one to the day's totals and to every subcount value the event carries
(each distinct value once, S2: keyword doc values are distinct per field,
values of several fields are merged first), and puts the event's visitor,
record, parent (and, for downloads, ``file_ref``) into that entry's sets.
The reduce returns per entry ``[events, volume, |set 1|, |set 2|, …]``.

Why not ``cardinality``: its HyperLogLog++ is not exact even far below its
``precision_threshold`` (its linear counting keeps 25-bit hashes: 1,199
distinct of 1,200 (record, key) pairs in our volume test), and at the
threshold of 40,000 that U3 asks for every bucket reserves 256 kB per
distinct metric — 1,000 subcount values × 4 metrics tripped the cluster's
memory breaker, and 9,000 buckets took 32 s where this script needs 5 s for
the same events (``benchmarks/``). The sets make every distinct count exact;
their memory is the distinct values of the days in one request, which
``usage`` bounds by grouping days under an event budget.
"""

#: Per-shard state: ``t`` the totals entry, ``k`` key -> value -> entry. An
#: entry is ``[long[1] events, double[1] volume, Set…]`` (one set per
#: distinct field).
INIT = "state.t = new HashMap(); state.k = new HashMap();"

_ADD = """
void add(Map m, def key, String[] vals, double size) {
  Object[] e = m.get(key);
  if (e == null) {
    e = new Object[vals.length + 2]; e[0] = new long[1]; e[1] = new double[1];
    for (int j = 0; j < vals.length; ++j) { e[j + 2] = new HashSet(); }
    m.put(key, e);
  }
  ((long[]) e[0])[0]++; ((double[]) e[1])[0] += size;
  for (int j = 0; j < vals.length; ++j) { if (vals[j] != null) { ((Set) e[j + 2]).add(vals[j]); } }
}
"""

MAP = _ADD + """
List distinct = params.distinct;
String[] vals = new String[distinct.size()];
for (int j = 0; j < vals.length; ++j) {
  String f = distinct.get(j);
  if (doc.containsKey(f)) { def dv = doc[f]; if (dv.size() > 0) { vals[j] = String.valueOf(dv.get(0)); } }
}
double size = 0;
if (params.volume && doc.containsKey('size')) {
  def dv = doc['size']; if (dv.size() > 0) { size = (double) dv.get(0); }
}
add(state.t, '', vals, size);
for (List k : params.keys) {
  Map m = state.k.get(k.get(0));
  if (m == null) { m = new HashMap(); state.k.put(k.get(0), m); }
  List fields = k.get(1);
  if (fields.size() == 1) {
    String f = fields.get(0);
    if (doc.containsKey(f)) { for (def x : doc[f]) { add(m, String.valueOf(x), vals, size); } }
  } else {
    Set seen = new HashSet();
    for (String f : fields) {
      if (doc.containsKey(f)) { for (def x : doc[f]) { seen.add(String.valueOf(x)); } }
    }
    for (def x : seen) { add(m, x, vals, size); }
  }
}
"""

#: Shard results travel as plain lists and maps.
COMBINE = """
List out(Object[] e) {
  List o = new ArrayList(); o.add(((long[]) e[0])[0]); o.add(((double[]) e[1])[0]);
  for (int j = 2; j < e.length; ++j) { o.add(new ArrayList((Set) e[j])); }
  return o;
}
Map k = new HashMap();
for (def ke : state.k.entrySet()) {
  Map m = new HashMap();
  for (def ve : ke.getValue().entrySet()) { m.put(ve.getKey(), out(ve.getValue())); }
  k.put(ke.getKey(), m);
}
Object[] t = state.t.get('');
return ['t': t == null ? null : out(t), 'k': k];
"""

#: An entry found in one shard's state keeps its lists (distinct already);
#: only entries found in several are merged into sets.
REDUCE = """
void merge(Map into, def key, List e) {
  List a = into.get(key);
  if (a == null) { into.put(key, new ArrayList(e)); return; }
  a.set(0, a.get(0) + e.get(0)); a.set(1, a.get(1) + e.get(1));
  for (int j = 2; j < e.size(); ++j) {
    def v = a.get(j);
    if (!(v instanceof Set)) { v = new HashSet(v); a.set(j, v); }
    v.addAll(e.get(j));
  }
}
List sizes(List a) {
  List o = new ArrayList(); o.add(a.get(0)); o.add(a.get(1));
  for (int j = 2; j < a.size(); ++j) { o.add(a.get(j).size()); }
  return o;
}
Map t = new HashMap(); Map k = new HashMap();
for (def s : states) {
  if (s == null) { continue; }
  if (s.t != null) { merge(t, '', s.t); }
  for (def ke : s.k.entrySet()) {
    Map m = k.get(ke.getKey());
    if (m == null) { m = new HashMap(); k.put(ke.getKey(), m); }
    for (def ve : ke.getValue().entrySet()) { merge(m, ve.getKey(), ve.getValue()); }
  }
}
Map ko = new HashMap();
for (def ke : k.entrySet()) {
  Map m = new HashMap();
  for (def ve : ke.getValue().entrySet()) { m.put(ve.getKey(), sizes(ve.getValue())); }
  ko.put(ke.getKey(), m);
}
return ['t': t.containsKey('') ? sizes(t.get('')) : null, 'k': ko];
"""


def aggregation(distinct_fields, volume, keys):
    """The ``scripted_metric``: ``keys`` = ``[[subcount key, [event fields…]], …]``."""
    return {"scripted_metric": {
        "init_script": INIT, "map_script": MAP, "combine_script": COMBINE,
        "reduce_script": REDUCE,
        "params": {"distinct": list(distinct_fields), "volume": bool(volume),
                   "keys": [[key, list(fields)] for key, fields in keys]}}}
