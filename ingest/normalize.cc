// Implementation of normalize.h.
#include "ingest/normalize.h"

#include <string>

namespace stickmeter::ingest {

MetricKind KindOf(DataType type) {
  switch (type) {
    case DataType::kGpc0:
    case DataType::kGpc1:
    case DataType::kGpc:
    case DataType::kConnCnt:
    case DataType::kSessCnt:
    case DataType::kHttpReqCnt:
    case DataType::kHttpErrCnt:
    case DataType::kHttpFailCnt:
    case DataType::kGlitchCnt:
      return MetricKind::kCounter32;
    case DataType::kBytesInCnt:
    case DataType::kBytesOutCnt:
      return MetricKind::kCounter64;
    default:
      return MetricKind::kGauge;
  }
}

uint64_t FreqCounterRate(const FreqCounter& c) {
  if (c.period_ms == 0) return c.curr_ctr;
  // The wire carries now - curr_tick as a uint32: how far into its period the counter was.
  const int64_t period = static_cast<int64_t>(c.period_ms);
  const int64_t elapsed = static_cast<int64_t>(static_cast<uint32_t>(c.curr_tick));
  uint64_t curr = c.curr_ctr;
  uint64_t past = c.prev_ctr;
  int64_t remain = period - elapsed;
  if (remain < 0) {
    // Past the current period: only a part of the previous one may still count.
    remain += period;
    past = remain >= 0 ? curr : 0;
    curr = 0;
  }
  if (curr == 0 && past <= 1) return past;  // HAProxy's flapping correction at low rates
  const unsigned __int128 total =
      static_cast<unsigned __int128>(past) * static_cast<uint64_t>(remain) +
      static_cast<unsigned __int128>(curr) * static_cast<uint64_t>(period);
  return static_cast<uint64_t>(total / static_cast<uint64_t>(period));
}

std::shared_ptr<const TableInfo> MakeTableInfo(const TableDefinition& table) {
  auto info = std::make_shared<TableInfo>();
  info->name = table.name;
  info->key_type = std::string(KeyTypeName(table.key_type));
  info->key_size = static_cast<uint32_t>(table.key_size);
  info->expire_ms = table.expire_ms;
  for (int t = 0; t < kDataTypeCount; ++t) {
    if (table.Stores(static_cast<DataType>(t))) {
      info->data_types.emplace_back(DataTypeName(static_cast<DataType>(t)));
      info->periods_ms.push_back(table.period_ms[static_cast<size_t>(t)]);
      info->array_sizes.push_back(static_cast<uint32_t>(table.nbelem[static_cast<size_t>(t)]));
    }
  }
  return info;
}

void AppendEntryUpdate(const EntryUpdateView& update, int64_t received_ms, TableUpdates& out,
                       bool raw_rates) {
  EntryUpdate& e = out.entries.emplace_back();
  e.key = FormatKey(update.table->key_type, update.key_bytes);
  e.received_ms = received_ms;
  e.values.reserve(update.values.size());
  for (const DataValue& v : update.values) {
    if (v.form == DataValue::Form::kDict) {
      e.server_key.assign(v.dict_value);
      continue;
    }
    MetricValue m;
    m.metric = MetricName(v.type, v.index);
    m.kind = KindOf(v.type);
    switch (v.form) {
      case DataValue::Form::kUnsigned:
        m.value = v.u;
        break;
      case DataValue::Form::kSigned:
        m.value = static_cast<uint64_t>(v.s);
        break;
      case DataValue::Form::kFreq:
        m.value = FreqCounterRate(v.freq);
        if (raw_rates) {
          e.rates.push_back(RawRate{m.metric, static_cast<uint32_t>(v.freq.period_ms),
                                    static_cast<uint32_t>(v.freq.curr_tick), v.freq.curr_ctr,
                                    v.freq.prev_ctr});
        }
        break;
      case DataValue::Form::kDict:
        break;
    }
    e.values.push_back(m);
  }
}

}  // namespace stickmeter::ingest
