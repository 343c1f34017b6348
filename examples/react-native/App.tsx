// The screen: a status line (the queue and the last upload, or why nothing is
// relayed) and the list of devices. The relay itself is in src/useRelay.ts.
import { FlatList, StyleSheet, Text, View } from 'react-native';
import type { RelayStatus } from 'sealpost/relay';
import type { AdapterDeviceStatus } from 'sealpost/relay/react-native';
import { useRelay } from './src/useRelay';

/** Your ingest server. */
const SERVER = 'https://ingest.example.com';

const time = (ms: number) => new Date(ms).toLocaleTimeString();

function summary(s: RelayStatus | undefined, problem: string | undefined): string {
  if (problem) return problem;
  if (!s) return 'Starting...';
  const last = s.lastUpload;
  if (s.failures > 0 && last) return `${s.queue} frames waiting; upload failed (${last.message}), next try ${s.retryAt ? time(s.retryAt) : 'soon'}`;
  if (s.uploading) return `${s.queue} frames waiting; uploading`;
  return `${s.queue} frames waiting; ${s.totals.accepted} stored; last upload ${last ? time(last.at) : 'none yet'}`;
}

function deviceLine(d: AdapterDeviceStatus, s: RelayStatus | undefined): string {
  const relayed = d.serial ? s?.devices.find((r) => r.serial === d.serial) : undefined;
  const frames = relayed ? `, ${relayed.received} frames, acked to ${relayed.ackN}` : '';
  const problem = d.problem ? ` (${d.problem})` : '';
  return `${d.serial ?? d.name ?? d.id}: ${d.state}${frames}${problem}`;
}

export default function App() {
  const { status, devices, problem } = useRelay(SERVER);
  return (
    <View style={styles.screen}>
      <Text style={styles.title}>Sealpost relay</Text>
      <Text style={styles.status} accessibilityRole="summary">
        {summary(status, problem)}
      </Text>
      <FlatList
        data={devices}
        keyExtractor={(d) => d.id}
        renderItem={({ item }) => <Text style={styles.device}>{deviceLine(item, status)}</Text>}
        ListEmptyComponent={<Text style={styles.device}>Looking for devices...</Text>}
      />
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16, paddingTop: 48 },
  title: { fontSize: 22, fontWeight: '600' },
  status: { marginVertical: 12 },
  device: { paddingVertical: 6 },
});
