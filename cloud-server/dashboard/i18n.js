// The dashboard's one string catalogue (English, German), the chosen language, and numbers,
// dates and "how long ago" in the user's locale. Every text the page shows comes from here.

const CATALOGUE = {
  en: {
    'lang.name': 'English',
    'lang.label': 'Language',
    'app.title': 'flatlink',
    'header.cloud': 'Cloud',
    'header.gateway': 'Gateway',
    'header.logout': 'Log out',
    'login.title': 'Log in to your flat',
    'login.flat': 'Flat',
    'login.user': 'User',
    'login.password': 'Password',
    'login.submit': 'Log in',
    'login.busy': 'Logging in…',
    'login.badFlat': 'The flat id is 1 to 64 letters, digits or _ . : -',
    'login.noUser': 'Enter your user name.',
    'login.refused': 'wrong flat, user or password',
    'login.closed': 'the cloud closed the connection: {reason}',
    'login.unreachable': 'cannot reach the cloud; try again',
    'flat.devices': 'Devices',
    'flat.noDevices': "This flat's gateway reports no devices yet.",
    'flat.other': 'Other',
    'notice.cloudLost': 'The connection to the cloud was lost. What you see may be out of date; reconnecting by itself.',
    'notice.gatewayOffline': "The flat's gateway is offline: devices cannot report or take commands until it is back.",
    'notice.cloudError': 'The cloud said: {message}',
    'notice.noConnection': 'No connection: this device is offline. The page will reconnect when the network is back.',
    'link.connected': 'connected',
    'link.connecting': 'connecting…',
    'link.reconnectingAttempt': 'reconnecting (attempt {attempt})…',
    'link.lostIn': 'lost; reconnecting in {s} s',
    'link.notConnected': 'not connected',
    'link.noConnection': 'no connection',
    'link.online': 'online',
    'link.offline': 'offline',
    'link.unknown': 'unknown',
    'presence.online': 'online',
    'presence.offline': 'offline',
    'presence.gatewayOffline': 'offline (gateway)',
    'tile.details': 'Details',
    'tile.detailsOf': 'Details of {device}',
    'tile.lastReported': 'Last reported: ',
    'tile.never': 'never',
    'label.open': 'Rename / room',
    'label.openOf': 'Rename / room: {device}',
    'label.name': 'Name',
    'label.room': 'Room',
    'label.hint': "Leave a field empty for the gateway's own name or room.",
    'label.save': 'Save',
    'label.cancel': 'Cancel',
    'label.saving': 'Saving…',
    'label.saved': 'Saved: every page of the flat shows it.',
    'label.failed': 'Not saved: {message}',
    'state.on': 'On',
    'state.off': 'Off',
    'state.unknown': 'unknown',
    'state.open': 'Open',
    'state.closed': 'Closed',
    'state.locked': 'Locked',
    'state.unlocked': 'Unlocked',
    'state.offline': 'Offline',
    'action.lock': 'Lock',
    'action.unlock': 'Unlock',
    'action.setTo': 'Set to {value}',
    'action.named': '{device}: {action}',
    'cap.on': 'Power',
    'cap.brightness': 'Brightness',
    'cap.temperature': 'Temperature',
    'cap.lock': 'Lock',
    'cap.humidity': 'Humidity',
    'value.on': 'on',
    'value.off': 'off',
    'value.locked': 'locked',
    'value.unlocked': 'unlocked',
    'confirm.title': 'Are you sure?',
    'confirm.cancel': 'Cancel',
    'confirm.ok': 'Confirm',
    'confirm.set': '{device}: set {capability} to {value}?',
    'command.turn': 'Turn {value}',
    'command.set': 'Set {value}',
    'command.field': 'Set',
    'command.fieldNamed': 'Set {name}',
    'outcome.pending': 'pending…',
    'outcome.ok': 'ok',
    'outcome.rejected': 'rejected',
    'outcome.expired': 'expired',
    'outcome.timeout': 'timeout',
    'outcome.offline': 'offline',
    'outcome.device_error': 'device error',
    'outcome.line': '{what}: {outcome}',
    'conn.loggedOut': 'logged out before the result came',
    'conn.lost': 'the connection to the cloud was lost before the result came; the device state shows what happened',
    'conn.notConnected': 'not connected to the cloud',
    'conn.noAnswer': 'no answer from the cloud',
    'time.justNow': 'just now',
    'chart.none': 'no history yet',
    'chart.collecting': 'collecting history…',
    'chart.last': 'last {span}: {lo}–{hi}{unit}',
    'chart.aria': '{label}, {text}, now {now}{unit}',
    'bounds': '{min} to {max}{unit}',
    'chart.ranges': 'History range',
    'chart.loading': 'loading history…',
    'chart.empty': 'no values stored in this range',
    'chart.failed': 'no history: {message}',
    'chart.rangeCaption': '{range}: {lo}–{hi}{unit} · {resolution}',
    'chart.rangeAria': '{label}, {text}',
    'chart.res.raw': 'every value',
    'chart.res.1m': 'average per minute, band: lowest to highest',
    'chart.res.1h': 'average per hour, band: lowest to highest',
    'chart.cursor': '{label}: point in time',
    'chart.point': '{when}: {value}',
    'chart.bucket': '{when}: average {avg}, {min} to {max}',
    'chart.noPoint': 'no value to show',
    'range.1h': '1 h',
    'range.24h': '24 h',
    'range.7d': '7 d',
    'range.30d': '30 d',
    'range.custom': 'Custom',
    'range.customOf': '{label}: custom range',
    'range.from': 'From',
    'range.to': 'To',
    'range.show': 'Show',
    'range.customInvalid': 'Choose a start before the end.',
    'range.last': 'last {range}',
    'range.between': '{from} to {to}',
    'timeline.title': '{name} over time',
    'timeline.caption': '{range}: {parts}',
    'timeline.part': '{value} {span}',
    'timeline.none': 'no change stored in this range',
    'timeline.unknown': 'not known',
    'timeline.segment': '{value}: {from} to {to} ({span})',
    'timeline.mixed': 'last value per {unit}',
    'unit.minute': 'minute',
    'unit.hour': 'hour',
    'audio.listen': 'Listen',
    'audio.stop': 'Stop',
    'audio.talk': 'Hold to talk',
    'audio.idle': 'idle',
    'audio.opening': 'opening…',
    'audio.ended': 'ended: {why}',
    'audio.live': 'live ({codec})',
    'audio.buffered': 'live ({codec}) · {ms} ms buffered',
    'audio.talking': 'live: talking',
    'audio.noMic': 'no microphone ({name})',
    'audio.decodeFailed': 'Opus decoding failed: {message}',
    'audio.encodeFailed': 'Opus encoding failed: {message}',
    'audio.lost': 'the connection to the cloud was lost',
    'audio.notConnected': 'not connected to the cloud',
    'audio.closed': 'closed',
    'header.logoutEverywhere': 'Log out everywhere',
    'account.role': 'Role',
    'account.label': 'Account: {user}',
    'role.owner': 'owner',
    'role.member': 'member',
    'role.guest': 'guest (watches only)',
    'login.sessionEnded': 'your session has ended; log in again',
    'login.busyCloud': 'the cloud is busy; try again in a moment',
    'login.storeAway': 'the cloud cannot reach its store; try again',
    'link.notResponding': 'not responding',
    'notice.gatewayNotResponding': 'The gateway is not responding: the devices\' states may be out of date, commands wait.',
    'views.label': 'Views',
    'views.devices': 'Devices',
    'views.events': 'Event log',
    'views.notify': 'Notifications',
    'notify.heading': 'Notifications',
    'notify.intro': 'Shown on this device while a page of the flat is open. Your choices are kept in this browser.',
    'notify.allow': 'Allow notifications',
    'notify.permission.granted': 'Notifications are allowed on this device.',
    'notify.permission.default': 'Notifications are not allowed yet on this device.',
    'notify.permission.denied': "This browser blocks notifications for this page; allow them in the browser's site settings.",
    'notify.permission.unsupported': 'This browser cannot show notifications.',
    'notify.events': 'Notify me when',
    'notify.event.door_unlocked': 'a door is unlocked',
    'notify.event.device_offline': 'a device goes offline',
    'notify.event.gateway_offline': 'the gateway goes offline',
    'notify.thresholds': 'A value rises above',
    'notify.device': 'Device',
    'notify.capability': 'Value',
    'notify.above.label': 'Above',
    'notify.add': 'Add',
    'notify.remove': 'Remove',
    'notify.removeRule': 'Remove: {rule}',
    'notify.rule': '{device}: {capability} above {value}',
    'notify.title': 'flatlink',
    'notify.doorUnlocked': '{device} unlocked',
    'notify.deviceOffline': '{device} is offline',
    'notify.gatewayOffline': "The flat's gateway is offline",
    'notify.above': '{device}: {capability} is {value} (above {limit})',
    'notify.webhook': "The flat's webhook",
    'notify.webhookIntro': 'The cloud sends these events to this address (signed JSON) even when no page is open: for ntfy, Gotify, Matrix or Home Assistant.',
    'notify.webhookUrl': 'Webhook URL (http or https)',
    'notify.webhookEvents': 'Events sent',
    'notify.webhookSave': 'Save webhook',
    'notify.webhookRemove': 'Remove webhook',
    'notify.webhookBusy': 'Asking the cloud…',
    'notify.webhookSet': 'The webhook is set.',
    'notify.webhookNone': 'No webhook is set.',
    'notify.webhookSecret': 'Its signing secret (shown this once; give it to the receiver): {secret}',
    'notify.webhookRefused': 'Not saved: {message}',
    'events.title': 'Event log',
    'events.device': 'Device',
    'events.kind': 'Kind',
    'events.allDevices': 'All devices',
    'events.allKinds': 'All kinds',
    'events.newer': 'Newer',
    'events.older': 'Older',
    'events.loading': 'loading…',
    'events.page': 'page {page}, newest first',
    'events.none': 'no events',
    'events.recent': 'Recent events',
    'events.unavailable': 'the event log needs the cloud\'s store',
    'kind.command': 'commands',
    'kind.presence': 'devices coming and going',
    'kind.gateway': 'gateway',
    'kind.login': 'logins',
    'kind.login_failed': 'failed logins',
    'kind.logout': 'logouts',
    'kind.member': 'members',
    'kind.admin': 'administration',
    'event.command': '{device} {what}',
    'event.commandBy': '{device} {what} by {user}',
    'event.locked': 'locked',
    'event.unlocked': 'unlocked',
    'event.turnedOn': 'turned on',
    'event.turnedOff': 'turned off',
    'event.set': 'set {name} to {value}',
    'event.deviceOnline': '{device} came online',
    'event.deviceOffline': '{device} went offline',
    'event.gatewayOnline': 'Gateway connected',
    'event.gatewayOffline': 'Gateway disconnected',
    'event.login': '{user} logged in',
    'event.loginFailed': 'Failed login as {user}',
    'event.logout': '{user} logged out',
    'event.member': '{user} is now {role} (by {by})',
    'event.admin': '{what} (by {by})',
    'event.label': '{device} named "{name}" in {room} by {user}',
  },
  de: {
    'lang.name': 'Deutsch',
    'lang.label': 'Sprache',
    'app.title': 'flatlink',
    'header.cloud': 'Cloud',
    'header.gateway': 'Gateway',
    'header.logout': 'Abmelden',
    'login.title': 'In deine Wohnung einloggen',
    'login.flat': 'Wohnung',
    'login.user': 'Benutzer',
    'login.password': 'Passwort',
    'login.submit': 'Einloggen',
    'login.busy': 'Einloggen…',
    'login.badFlat': 'Die Wohnungs-ID hat 1 bis 64 Buchstaben, Ziffern oder _ . : -',
    'login.noUser': 'Gib deinen Benutzernamen ein.',
    'login.refused': 'Wohnung, Benutzer oder Passwort falsch',
    'login.closed': 'die Cloud hat die Verbindung geschlossen: {reason}',
    'login.unreachable': 'die Cloud ist nicht erreichbar; bitte erneut versuchen',
    'flat.devices': 'Geräte',
    'flat.noDevices': 'Das Gateway dieser Wohnung meldet noch keine Geräte.',
    'flat.other': 'Sonstige',
    'notice.cloudLost': 'Die Verbindung zur Cloud ist unterbrochen. Was du siehst, ist vielleicht nicht aktuell; die Seite verbindet sich von selbst neu.',
    'notice.gatewayOffline': 'Das Gateway der Wohnung ist offline: Geräte können nichts melden und keine Befehle annehmen, bis es zurück ist.',
    'notice.cloudError': 'Die Cloud meldet: {message}',
    'notice.noConnection': 'Keine Verbindung: dieses Gerät ist offline. Die Seite verbindet sich neu, sobald das Netz zurück ist.',
    'link.connected': 'verbunden',
    'link.connecting': 'verbinde…',
    'link.reconnectingAttempt': 'verbinde neu (Versuch {attempt})…',
    'link.lostIn': 'getrennt; neuer Versuch in {s} s',
    'link.notConnected': 'nicht verbunden',
    'link.noConnection': 'keine Verbindung',
    'link.online': 'online',
    'link.offline': 'offline',
    'link.unknown': 'unbekannt',
    'presence.online': 'online',
    'presence.offline': 'offline',
    'presence.gatewayOffline': 'offline (Gateway)',
    'tile.details': 'Details',
    'tile.detailsOf': 'Details zu {device}',
    'tile.lastReported': 'Zuletzt gemeldet: ',
    'tile.never': 'nie',
    'label.open': 'Umbenennen / Raum',
    'label.openOf': 'Umbenennen / Raum: {device}',
    'label.name': 'Name',
    'label.room': 'Raum',
    'label.hint': 'Ein leeres Feld nimmt den Namen oder Raum, den das Gateway meldet.',
    'label.save': 'Speichern',
    'label.cancel': 'Abbrechen',
    'label.saving': 'Wird gespeichert …',
    'label.saved': 'Gespeichert: jede Seite der Wohnung zeigt es.',
    'label.failed': 'Nicht gespeichert: {message}',
    'state.on': 'An',
    'state.off': 'Aus',
    'state.unknown': 'unbekannt',
    'state.open': 'Offen',
    'state.closed': 'Geschlossen',
    'state.locked': 'Verriegelt',
    'state.unlocked': 'Entriegelt',
    'state.offline': 'Offline',
    'action.lock': 'Verriegeln',
    'action.unlock': 'Entriegeln',
    'action.setTo': 'Auf {value} stellen',
    'action.named': '{device}: {action}',
    'cap.on': 'Strom',
    'cap.brightness': 'Helligkeit',
    'cap.temperature': 'Temperatur',
    'cap.lock': 'Schloss',
    'cap.humidity': 'Luftfeuchte',
    'value.on': 'an',
    'value.off': 'aus',
    'value.locked': 'verriegelt',
    'value.unlocked': 'entriegelt',
    'confirm.title': 'Bist du sicher?',
    'confirm.cancel': 'Abbrechen',
    'confirm.ok': 'Bestätigen',
    'confirm.set': '{device}: {capability} auf {value} stellen?',
    'command.turn': '{value}schalten',
    'command.set': '{value} setzen',
    'command.field': 'Setzen',
    'command.fieldNamed': '{name} setzen',
    'outcome.pending': 'läuft…',
    'outcome.ok': 'ok',
    'outcome.rejected': 'abgelehnt',
    'outcome.expired': 'abgelaufen',
    'outcome.timeout': 'Zeitüberschreitung',
    'outcome.offline': 'offline',
    'outcome.device_error': 'Gerätefehler',
    'outcome.line': '{what}: {outcome}',
    'conn.loggedOut': 'abgemeldet, bevor das Ergebnis kam',
    'conn.lost': 'die Verbindung zur Cloud brach ab, bevor das Ergebnis kam; der Gerätezustand zeigt, was geschah',
    'conn.notConnected': 'nicht mit der Cloud verbunden',
    'conn.noAnswer': 'keine Antwort von der Cloud',
    'time.justNow': 'gerade eben',
    'chart.none': 'noch kein Verlauf',
    'chart.collecting': 'Verlauf wird gesammelt…',
    'chart.last': 'letzte {span}: {lo}–{hi}{unit}',
    'chart.aria': '{label}, {text}, jetzt {now}{unit}',
    'bounds': '{min} bis {max}{unit}',
    'chart.ranges': 'Zeitraum des Verlaufs',
    'chart.loading': 'lade Verlauf…',
    'chart.empty': 'keine Werte in diesem Zeitraum gespeichert',
    'chart.failed': 'kein Verlauf: {message}',
    'chart.rangeCaption': '{range}: {lo}–{hi}{unit} · {resolution}',
    'chart.rangeAria': '{label}, {text}',
    'chart.res.raw': 'jeder Wert',
    'chart.res.1m': 'Mittel pro Minute, Band: niedrigster bis höchster',
    'chart.res.1h': 'Mittel pro Stunde, Band: niedrigster bis höchster',
    'chart.cursor': '{label}: Zeitpunkt',
    'chart.point': '{when}: {value}',
    'chart.bucket': '{when}: Mittel {avg}, {min} bis {max}',
    'chart.noPoint': 'kein Wert zum Anzeigen',
    'range.1h': '1 Std.',
    'range.24h': '24 Std.',
    'range.7d': '7 T.',
    'range.30d': '30 T.',
    'range.custom': 'Eigener',
    'range.customOf': '{label}: eigener Zeitraum',
    'range.from': 'Von',
    'range.to': 'Bis',
    'range.show': 'Anzeigen',
    'range.customInvalid': 'Wähle einen Beginn vor dem Ende.',
    'range.last': 'letzte {range}',
    'range.between': '{from} bis {to}',
    'timeline.title': '{name} im Zeitverlauf',
    'timeline.caption': '{range}: {parts}',
    'timeline.part': '{value} {span}',
    'timeline.none': 'keine Änderung in diesem Zeitraum gespeichert',
    'timeline.unknown': 'unbekannt',
    'timeline.segment': '{value}: {from} bis {to} ({span})',
    'timeline.mixed': 'letzter Wert pro {unit}',
    'unit.minute': 'Minute',
    'unit.hour': 'Stunde',
    'audio.listen': 'Zuhören',
    'audio.stop': 'Stopp',
    'audio.talk': 'Halten zum Sprechen',
    'audio.idle': 'bereit',
    'audio.opening': 'öffne…',
    'audio.ended': 'beendet: {why}',
    'audio.live': 'live ({codec})',
    'audio.buffered': 'live ({codec}) · {ms} ms gepuffert',
    'audio.talking': 'live: du sprichst',
    'audio.noMic': 'kein Mikrofon ({name})',
    'audio.decodeFailed': 'Opus-Dekodierung fehlgeschlagen: {message}',
    'audio.encodeFailed': 'Opus-Kodierung fehlgeschlagen: {message}',
    'audio.lost': 'die Verbindung zur Cloud brach ab',
    'audio.notConnected': 'nicht mit der Cloud verbunden',
    'audio.closed': 'geschlossen',
    'header.logoutEverywhere': 'Überall abmelden',
    'account.role': 'Rolle',
    'account.label': 'Konto: {user}',
    'role.owner': 'Eigentümer',
    'role.member': 'Mitglied',
    'role.guest': 'Gast (nur zusehen)',
    'login.sessionEnded': 'deine Sitzung ist beendet; bitte erneut einloggen',
    'login.busyCloud': 'die Cloud ist ausgelastet; bitte gleich erneut versuchen',
    'login.storeAway': 'die Cloud erreicht ihren Speicher nicht; bitte erneut versuchen',
    'link.notResponding': 'antwortet nicht',
    'notice.gatewayNotResponding': 'Das Gateway antwortet nicht: die Zustände der Geräte sind vielleicht veraltet, Befehle warten.',
    'views.label': 'Ansichten',
    'views.devices': 'Geräte',
    'views.events': 'Ereignisse',
    'views.notify': 'Benachrichtigungen',
    'notify.heading': 'Benachrichtigungen',
    'notify.intro': 'Auf diesem Gerät angezeigt, solange eine Seite der Wohnung offen ist. Ihre Auswahl bleibt in diesem Browser.',
    'notify.allow': 'Benachrichtigungen erlauben',
    'notify.permission.granted': 'Benachrichtigungen sind auf diesem Gerät erlaubt.',
    'notify.permission.default': 'Benachrichtigungen sind auf diesem Gerät noch nicht erlaubt.',
    'notify.permission.denied': 'Dieser Browser blockiert Benachrichtigungen für diese Seite; erlauben Sie sie in den Website-Einstellungen des Browsers.',
    'notify.permission.unsupported': 'Dieser Browser kann keine Benachrichtigungen anzeigen.',
    'notify.events': 'Benachrichtigen, wenn',
    'notify.event.door_unlocked': 'eine Tür entriegelt wird',
    'notify.event.device_offline': 'ein Gerät offline geht',
    'notify.event.gateway_offline': 'das Gateway offline geht',
    'notify.thresholds': 'Ein Wert steigt über',
    'notify.device': 'Gerät',
    'notify.capability': 'Wert',
    'notify.above.label': 'Über',
    'notify.add': 'Hinzufügen',
    'notify.remove': 'Entfernen',
    'notify.removeRule': 'Entfernen: {rule}',
    'notify.rule': '{device}: {capability} über {value}',
    'notify.title': 'flatlink',
    'notify.doorUnlocked': '{device} entriegelt',
    'notify.deviceOffline': '{device} ist offline',
    'notify.gatewayOffline': 'Das Gateway der Wohnung ist offline',
    'notify.above': '{device}: {capability} ist {value} (über {limit})',
    'notify.webhook': 'Der Webhook der Wohnung',
    'notify.webhookIntro': 'Die Cloud sendet diese Ereignisse an diese Adresse (signiertes JSON), auch wenn keine Seite offen ist: für ntfy, Gotify, Matrix oder Home Assistant.',
    'notify.webhookUrl': 'Webhook-URL (http oder https)',
    'notify.webhookEvents': 'Gesendete Ereignisse',
    'notify.webhookSave': 'Webhook speichern',
    'notify.webhookRemove': 'Webhook entfernen',
    'notify.webhookBusy': 'Frage die Cloud…',
    'notify.webhookSet': 'Der Webhook ist gesetzt.',
    'notify.webhookNone': 'Kein Webhook gesetzt.',
    'notify.webhookSecret': 'Sein Signaturschlüssel (nur dieses eine Mal angezeigt; geben Sie ihn dem Empfänger): {secret}',
    'notify.webhookRefused': 'Nicht gespeichert: {message}',
    'events.title': 'Ereignisse',
    'events.device': 'Gerät',
    'events.kind': 'Art',
    'events.allDevices': 'Alle Geräte',
    'events.allKinds': 'Alle Arten',
    'events.newer': 'Neuere',
    'events.older': 'Ältere',
    'events.loading': 'lade…',
    'events.page': 'Seite {page}, neueste zuerst',
    'events.none': 'keine Ereignisse',
    'events.recent': 'Letzte Ereignisse',
    'events.unavailable': 'die Ereignisse brauchen den Speicher der Cloud',
    'kind.command': 'Befehle',
    'kind.presence': 'Geräte kommen und gehen',
    'kind.gateway': 'Gateway',
    'kind.login': 'Anmeldungen',
    'kind.login_failed': 'fehlgeschlagene Anmeldungen',
    'kind.logout': 'Abmeldungen',
    'kind.member': 'Mitglieder',
    'kind.admin': 'Verwaltung',
    'event.command': '{device} {what}',
    'event.commandBy': '{device} {what} von {user}',
    'event.locked': 'verriegelt',
    'event.unlocked': 'entriegelt',
    'event.turnedOn': 'eingeschaltet',
    'event.turnedOff': 'ausgeschaltet',
    'event.set': '{name} auf {value} gesetzt',
    'event.deviceOnline': '{device} ist online',
    'event.deviceOffline': '{device} ist offline',
    'event.gatewayOnline': 'Gateway verbunden',
    'event.gatewayOffline': 'Gateway getrennt',
    'event.login': '{user} hat sich angemeldet',
    'event.loginFailed': 'Fehlgeschlagene Anmeldung als {user}',
    'event.logout': '{user} hat sich abgemeldet',
    'event.member': '{user} ist jetzt {role} (von {by})',
    'event.admin': '{what} (von {by})',
    'event.label': '{device} heißt nun „{name}“ in {room} (von {user})',
  },
};

export const LANGUAGES = Object.keys(CATALOGUE);
const STORAGE_KEY = 'flatlink.lang';

// The language from a list of the browser's preferences (navigator.languages): the first
// one the catalogue has, by its primary subtag; English otherwise.
export function pickLanguage(preferred = []) {
  for (const tag of preferred) {
    const primary = String(tag).toLowerCase().split('-')[0];
    if (CATALOGUE[primary]) return primary;
  }
  return 'en';
}

function initialLanguage() {
  try {
    const chosen = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (chosen && CATALOGUE[chosen]) return chosen;
  } catch {
    // storage refused (privacy mode): the browser's language it is
  }
  const nav = globalThis.navigator;
  return pickLanguage(nav ? (nav.languages?.length ? nav.languages : [nav.language]) : []);
}

let lang = initialLanguage();
// The locale for numbers and dates: the browser's own when it speaks the chosen language
// (de-AT, en-GB), else the language itself.
let locale = lang;
const listeners = new Set();

function localeFor(language) {
  const nav = globalThis.navigator;
  const tags = nav ? (nav.languages?.length ? nav.languages : [nav.language]) : [];
  return tags.find((tag) => String(tag).toLowerCase().split('-')[0] === language) || language;
}
locale = localeFor(lang);

export function language() {
  return lang;
}

export function currentLocale() {
  return locale;
}

// Chosen with the page's switch: remembered in this browser (the one thing stored).
export function setLanguage(next) {
  if (!CATALOGUE[next] || next === lang) return;
  lang = next;
  locale = localeFor(next);
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, next);
  } catch {
    // not remembered; still switched
  }
  for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

// t('confirm.set', { device: 'Lamp', ... }): the chosen language's text, English when the
// key is missing there, the key itself when it is missing everywhere (seen, never hidden).
export function t(key, params = {}) {
  const text = CATALOGUE[lang][key] ?? CATALOGUE.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return key in CATALOGUE.en;
}

// Every key of every language, for the test that the catalogue is complete.
export function catalogue() {
  return CATALOGUE;
}

// At most two decimals (one from 100 up), in the user's locale: 21, 21.5, 9.75 (21,5 in German).
export function formatNumber(value) {
  const digits = Math.abs(value) < 100 ? 2 : 1;
  return formatter(`number${digits}`, (l) => new Intl.NumberFormat(l, { maximumFractionDigits: digits, useGrouping: false })).format(value);
}

// Intl's formatters are costly to make: one per locale and kind, kept (updates come often).
const formatters = new Map();
function formatter(kind, make) {
  const key = `${kind}/${locale}`;
  if (!formatters.has(key)) formatters.set(key, make(locale));
  return formatters.get(key);
}

export function formatDateTime(ts) {
  return formatter('datetime', (l) => new Intl.DateTimeFormat(l, { dateStyle: 'medium', timeStyle: 'medium' })).format(ts);
}

// "just now", "12 s ago", "3 min ago", "5 h ago" (in the user's language), then a date.
export function relativeTime(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 5) return t('time.justNow');
  const rtf = formatter('relative', (l) => new Intl.RelativeTimeFormat(l, { numeric: 'always', style: 'narrow' }));
  if (s < 60) return rtf.format(-s, 'second');
  const m = Math.floor(s / 60);
  if (m < 60) return rtf.format(-m, 'minute');
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return rtf.format(-hrs, 'hour');
  return formatter('date', (l) => new Intl.DateTimeFormat(l, { dateStyle: 'medium' })).format(ts);
}

// Axis labels: a time of day ("14:00", "2 PM"), a day ("5 Dec", "5. Dez."), and a point's
// time in a readout ("Dec 5, 14:02:10"), in the user's locale.
export function formatTime(ts, { seconds = false } = {}) {
  const kind = seconds ? 'time-s' : 'time';
  return formatter(kind, (l) => new Intl.DateTimeFormat(l, { hour: 'numeric', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}) })).format(ts);
}

export function formatDay(ts) {
  return formatter('day', (l) => new Intl.DateTimeFormat(l, { day: 'numeric', month: 'short' })).format(ts);
}

export function formatWhen(ts, { seconds = false } = {}) {
  const kind = seconds ? 'when-s' : 'when';
  return formatter(kind, (l) =>
    new Intl.DateTimeFormat(l, { day: 'numeric', month: 'short', hour: 'numeric', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}) }),
  ).format(ts);
}

// A duration for chart captions: "45 s", "12 min", "3 h" (same in both languages).
export function formatSpan(ms) {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const hrs = Math.round(m / 60);
  if (hrs < 72) return `${hrs} h`;
  return `${Math.round(hrs / 24)} d`;
}
